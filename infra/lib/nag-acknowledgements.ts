import { Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { ScanPipeline } from './scan-pipeline.js';

/**
 * Every cdk-nag AwsSolutions finding this construct leaves open, acknowledged where it arises with the reason
 * it is acceptable. Acknowledgements name the exact finding (`Rule[Finding]`), so a new wildcard still fails
 * synth. They use CDK's own Validations API, so the construct does not depend on cdk-nag.
 */

/** The notifications handler CDK adds once per stack for S3 → EventBridge configuration. */
const BUCKET_NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

export function acknowledgeNagFindings(pipeline: ScanPipeline): void {
  const stack = Stack.of(pipeline);
  const objectFindings = (arns: readonly string[]) =>
    arns.map((arn) => `Resource::${flattenCfnReference(stack.resolve(arn))}`);
  const protectedObjects = objectFindings(pipeline.protectedBuckets.map((b) => b.arnForObjects('*')));
  const placementObjects = objectFindings([
    pipeline.destinationBucket.arnForObjects('*'),
    pipeline.quarantineBucket.arnForObjects('*'),
  ]);
  const objectReason =
    'Objects are addressed by key, so object-level S3 actions need the bucket/* ARN; the actions are the exact ones the pipeline step performs and the bucket is one of the pipeline buckets.';

  const iam5 = (role: iam.IRole, findings: readonly string[], reason: string) => {
    for (const finding of findings) Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
  };

  const stateMachineRole = pipeline.stateMachine.role;
  iam5(stateMachineRole, [...protectedObjects, ...placementObjects], objectReason);
  iam5(
    stateMachineRole,
    ['Resource::*'],
    'X-Ray tracing (xray:PutTraceSegments and friends) and CloudWatch Logs delivery for Step Functions (logs:CreateLogDelivery and friends) support no resource-level permissions; CDK adds exactly those actions.',
  );

  const startScanRole = pipeline.startScanFunction.role;
  if (startScanRole) iam5(startScanRole, protectedObjects, objectReason);

  const taskDefinition = pipeline.workerService.taskDefinition;
  iam5(taskDefinition.taskRole, protectedObjects, objectReason);
  iam5(
    taskDefinition.taskRole,
    objectFindings([pipeline.destinationBucket.arnForObjects('*')]),
    'The worker reads the destination object (GetObject, GetObjectTagging) of the key it just scanned, to decide whether its Clean version may still be promoted; keys are only known at run time, so the grant is on destination/*.',
  );
  iam5(
    taskDefinition.taskRole,
    ['Resource::*'],
    'cloudwatch:PutMetricData has no resource type; the statement is limited by a cloudwatch:namespace condition to the pipeline namespace.',
  );
  iam5(
    taskDefinition.taskRole,
    [`Resource::${flattenCfnReference(stack.resolve(pipeline.scanExecutionsArn))}`],
    'Execution ARNs end in the execution name, which start-scan derives from each object: states:DescribeExecution can only be granted on the executions of the scan-object state machine as a whole (<name>:*), which is what the statement names.',
  );
  const executionRole = taskDefinition.executionRole;
  if (executionRole) {
    iam5(
      executionRole,
      ['Resource::*'],
      'ecr:GetAuthorizationToken has no resource type; image pulls themselves are scoped to the asset repository by CDK.',
    );
  }

  for (const fn of [pipeline.startScanFunction, pipeline.recordResultFunction]) {
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason: `${fn.node.id} is built, tested and supported on Node.js 22 (LTS, supported by Lambda until 2027); moving to a newer runtime is a deliberate, tested change rather than automatic.`,
    });
  }
  Validations.of(taskDefinition).acknowledge({
    id: 'AwsSolutions-ECS2',
    reason:
      'The worker environment holds only non-secret configuration (queue URL, limits, metrics names); there are no credentials to move to Secrets Manager: the task role provides AWS access.',
  });

  const notificationsHandler = stack.node.tryFindChild(BUCKET_NOTIFICATIONS_HANDLER_ID);
  if (notificationsHandler) {
    Validations.of(notificationsHandler).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        'CDK-owned singleton that turns on S3 → EventBridge notifications (merging with existing configuration for imported buckets); AWSLambdaBasicExecutionRole only lets it write its own logs.',
    });
  }
}

/** Renders a resolved CloudFormation value the way cdk-nag names findings (`<Logical.Arn>/*`, `<AWS::Partition>`). */
export function flattenCfnReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const ref = node as Record<string, unknown>;
    const join = ref['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, items] = join as [string, unknown[]];
      return items.map(flattenCfnReference).join(delimiter);
    }
    if (ref['Fn::Sub'] !== undefined) return flattenCfnReference(ref['Fn::Sub']);
    const getAtt = ref['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${flattenCfnReference(getAtt[0])}.${flattenCfnReference(getAtt[1])}>`;
    if (ref['Fn::ImportValue'] !== undefined) return flattenCfnReference(ref['Fn::ImportValue']);
    if (ref.Ref !== undefined) return `<${flattenCfnReference(ref.Ref)}>`;
  }
  return JSON.stringify(node);
}
