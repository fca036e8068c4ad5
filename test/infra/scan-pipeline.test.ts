import { Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import { MAX_JOB_DELIVERIES, SCAN_JOBS_MAX_RECEIVE_COUNT } from '../../functions/commons/scan-execution.js';
import { TAG_KEYS } from '../../functions/commons/verdict.js';
import { RESULT_METRICS } from '../../functions/record-result/result-metrics.js';
import { START_SCAN_METRICS } from '../../functions/start-scan/metrics.js';
import { METRIC_NAMES } from '../../scanner-image/src/metrics.js';
import { SIGNATURE_METRICS } from '../../scanner-image/src/signature-freshness.js';
import { readScanObjectDefinitionTemplate, renderDefinition } from '../../statemachines/scan-object.js';
import {
  asList,
  identityStatements,
  type PolicyStatementJson,
  referencedId,
  referencedIds,
  SCAN_TAG_KEY_PATTERNS,
  statementsOfRole,
  synthScanflow,
} from './synth.js';

/** The default deployment: new buckets and VPC, every ScanPipeline default. Synthesized once. */
let template: Template;
let ids: {
  staging: string;
  destination: string;
  quarantine: string;
  scanJobs: string;
  scanRequests: string;
  topic: string;
  stateMachine: string;
  stateMachineRole: string;
  startScan: string;
  startScanRole: string;
  taskRole: string;
};
let substitutions: Record<string, unknown>;

function only<T>(record: Record<string, T>, what: string): [string, T] {
  const entries = Object.entries(record);
  if (entries.length !== 1) throw new Error(`expected exactly one ${what}, found ${entries.length}`);
  return entries[0] as [string, T];
}

function mustRef(value: unknown, what: string): string {
  const id = referencedId(value);
  if (!id) throw new Error(`${what} is not a reference: ${JSON.stringify(value)}`);
  return id;
}

beforeAll(() => {
  ({ template } = synthScanflow({}));

  const [stateMachineId, stateMachine] = only(
    template.findResources('AWS::StepFunctions::StateMachine'),
    'state machine',
  );
  const smProps = (
    stateMachine as { Properties: { DefinitionSubstitutions: Record<string, unknown>; RoleArn: unknown } }
  ).Properties;
  substitutions = smProps.DefinitionSubstitutions;

  const [, rule] = only(template.findResources('AWS::Events::Rule'), 'EventBridge rule');
  const ruleProps = (
    rule as {
      Properties: { EventPattern: { detail: { bucket: { name: unknown[] } } }; Targets: Array<{ Arn: unknown }> };
    }
  ).Properties;

  const [startScanId, startScan] = only(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { STATE_MACHINE_ARN: Match.anyValue() } } },
    }),
    'start-scan function',
  );
  const [, taskDefinition] = only(template.findResources('AWS::ECS::TaskDefinition'), 'task definition');

  ids = {
    staging: mustRef(ruleProps.EventPattern.detail.bucket.name[0], 'rule bucket name'),
    destination: mustRef(substitutions.DestinationBucket, 'DestinationBucket'),
    quarantine: mustRef(substitutions.QuarantineBucket, 'QuarantineBucket'),
    scanJobs: mustRef(substitutions.ScanJobsQueueUrl, 'ScanJobsQueueUrl'),
    scanRequests: mustRef(ruleProps.Targets[0]?.Arn, 'rule target'),
    topic: mustRef(substitutions.ResultsTopicArn, 'ResultsTopicArn'),
    stateMachine: stateMachineId,
    stateMachineRole: mustRef(smProps.RoleArn, 'state machine role'),
    startScan: startScanId,
    startScanRole: mustRef((startScan as { Properties: { Role: unknown } }).Properties.Role, 'start-scan role'),
    taskRole: mustRef((taskDefinition as { Properties: { TaskRoleArn: unknown } }).Properties.TaskRoleArn, 'task role'),
  };
});

const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const objectsOf = (id: string) => ({ 'Fn::Join': ['', [arnOf(id), '/*']] });
const actionsOf = (s: PolicyStatementJson) => asList(s.Action);

describe('state machine', () => {
  test('its definition is the ASL file, and every placeholder has a substitution', () => {
    const definition = new Capture();
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { DefinitionString: definition });
    const fileText = readScanObjectDefinitionTemplate();
    expect(JSON.parse(definition.asString())).toEqual(JSON.parse(fileText));

    // CloudFormation resolves DefinitionSubstitutions; render with stand-ins for the deploy-time values.
    const standIns = Object.fromEntries(Object.keys(substitutions).map((name) => [name, `resolved-${name}`]));
    const rendered = renderDefinition(definition.asString(), standIns);
    expect(rendered).not.toContain('${');
    expect(Object.keys(substitutions).sort()).toEqual([
      'DestinationBucket',
      'QuarantineBucket',
      'ResultsTopicArn',
      'ScanJobsQueueUrl',
    ]);
  });

  test('placeholders point at the pipeline resources', () => {
    expect(template.findResources('AWS::SQS::Queue')[ids.scanJobs]).toBeDefined();
    expect(template.findResources('AWS::S3::Bucket')[ids.destination]).toBeDefined();
    expect(template.findResources('AWS::S3::Bucket')[ids.quarantine]).toBeDefined();
    expect(template.findResources('AWS::SNS::Topic')[ids.topic]).toBeDefined();
    expect(new Set([ids.staging, ids.destination, ids.quarantine]).size).toBe(3);
  });

  test('is Standard, logs ALL without execution data, and is traced', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
    });
  });

  test('its role may do exactly what the ASL states do, on the pipeline resources', () => {
    const statements = statementsOfRole(template, ids.stateMachineRole);
    const grants = (action: string) => statements.filter((s) => s.Effect === 'Allow' && actionsOf(s).includes(action));
    const resourcesFor = (action: string) => grants(action).flatMap((s) => asList(s.Resource));

    expect(resourcesFor('sqs:SendMessage')).toEqual([arnOf(ids.scanJobs)]);
    expect(resourcesFor('sns:Publish')).toEqual([{ Ref: ids.topic }]);
    for (const action of [
      's3:PutObjectVersionTagging',
      's3:GetObjectVersion',
      's3:GetObjectVersionTagging',
      's3:DeleteObjectVersion',
    ]) {
      expect(resourcesFor(action)).toEqual([objectsOf(ids.staging)]);
    }
    expect(resourcesFor('s3:PutObject')).toEqual([objectsOf(ids.destination), objectsOf(ids.quarantine)]);
    // The conditional promotions (If-None-Match / If-Match) need read access to the destination's current object.
    expect(resourcesFor('s3:GetObject')).toEqual(
      expect.arrayContaining([objectsOf(ids.staging), objectsOf(ids.destination)]),
    );
    expect(resourcesFor('s3:PutObjectTagging')).toEqual(
      expect.arrayContaining([objectsOf(ids.staging), objectsOf(ids.destination), objectsOf(ids.quarantine)]),
    );
    expect(grants('kms:GenerateDataKey').length).toBe(1);
  });
});

describe('IAM', () => {
  test('no statement allows every action or every action of a service', () => {
    for (const { statement } of identityStatements(template)) {
      for (const action of actionsOf(statement)) {
        expect(action).not.toBe('*');
        expect(action).not.toMatch(/^[a-z0-9-]+:\*$/);
      }
    }
  });

  test('every S3 object permission is scoped to the pipeline buckets', () => {
    const pipelineBuckets = new Set([ids.staging, ids.destination, ids.quarantine]);
    const s3Statements = identityStatements(template).filter(
      ({ statement }) => statement.Effect === 'Allow' && actionsOf(statement).some((a) => a.startsWith('s3:')),
    );
    // The only other S3 grant is CDK's notifications handler (s3:PutBucketNotification).
    const objectStatements = s3Statements.filter(({ statement }) =>
      actionsOf(statement).some((a) => a.includes('Object')),
    );
    expect(objectStatements.length).toBeGreaterThanOrEqual(5);
    for (const { statement } of objectStatements) {
      for (const resource of asList(statement.Resource)) {
        expect(resource).not.toBe('*');
        const referenced = [...referencedIds(resource)];
        expect(referenced.length).toBe(1);
        expect(pipelineBuckets.has(referenced[0] as string)).toBe(true);
      }
    }
  });

  test('a wildcard resource is only used for actions that have no resource type', () => {
    const allowedWithStar = new Set([
      'xray:PutTraceSegments',
      'xray:PutTelemetryRecords',
      'xray:GetSamplingRules',
      'xray:GetSamplingTargets',
      'logs:CreateLogDelivery',
      'logs:GetLogDelivery',
      'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:DescribeResourcePolicies',
      'logs:DescribeLogGroups',
      'ecr:GetAuthorizationToken',
      'cloudwatch:PutMetricData',
      's3:PutBucketNotification',
    ]);
    for (const { statement } of identityStatements(template)) {
      if (statement.Effect !== 'Allow' || !asList(statement.Resource).includes('*')) continue;
      for (const action of actionsOf(statement)) expect(allowedWithStar).toContain(action);
    }
  });

  test('the worker publishes metrics only into the pipeline namespace', () => {
    const statement = statementsOfRole(template, ids.taskRole).find((s) =>
      actionsOf(s).includes('cloudwatch:PutMetricData'),
    );
    expect(statement?.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': 'Scanflow' } });
  });

  test('the worker consumes scan-jobs, completes task tokens, checks its executions, reads protected objects and the destination object of its key, nothing else', () => {
    const statements = statementsOfRole(template, ids.taskRole);
    const actions = statements.flatMap(actionsOf).sort();
    expect(actions).toEqual(
      [
        'cloudwatch:PutMetricData',
        's3:GetObject',
        's3:GetObjectTagging',
        's3:GetObjectVersion',
        // ReadDestinationForPromotionOrder
        's3:GetObject',
        's3:GetObjectTagging',
        's3:ListBucket',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:ReceiveMessage',
        'states:DescribeExecution',
        'states:SendTaskFailure',
        'states:SendTaskHeartbeat',
        'states:SendTaskSuccess',
      ].sort(),
    );
    const taskResponse = statements.find((s) => actionsOf(s).includes('states:SendTaskSuccess'));
    expect(taskResponse?.Resource).toEqual({ Ref: ids.stateMachine });
    // Only the executions of scan-object: arn:…:execution:<state machine name>:*
    const executions = statements.find((s) => actionsOf(s).includes('states:DescribeExecution'));
    expect(JSON.stringify(executions?.Resource)).toMatch(/:execution:"?.*"Fn::GetAtt":\["[^"]*","Name"\].*:\*"/);
  });

  test('the worker may read the destination object and tags of a key, and nothing else of the destination', () => {
    const statements = statementsOfRole(template, ids.taskRole);
    const onDestination = statements.filter((s) =>
      asList(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(objectsOf(ids.destination))),
    );
    expect(onDestination).toEqual([
      expect.objectContaining({
        Sid: 'ReadDestinationForPromotionOrder',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectTagging'],
        Resource: objectsOf(ids.destination),
      }),
    ]);
  });

  // Without s3:ListBucket S3 answers 403, not 404, for a key that does not exist.
  test.each([
    ['startScanRole', ['staging']],
    ['stateMachineRole', ['staging', 'destination']],
    ['taskRole', ['staging', 'destination']],
  ] as const)('%s may list exactly the buckets whose missing keys it must see as 404: %j', (role, buckets) => {
    const statements = statementsOfRole(template, ids[role]);
    const listing = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:List')));
    expect(listing).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: 's3:ListBucket',
      }),
    ]);
    const resources = asList(listing[0]?.Resource).map((r) => JSON.stringify(r));
    expect(resources.sort()).toEqual(buckets.map((b) => JSON.stringify(arnOf(ids[b]))).sort());
    expect(listing[0]?.Condition).toBeUndefined();
  });

  test('start-scan reads object identity and tags and starts executions of scan-object only', () => {
    const statements = statementsOfRole(template, ids.startScanRole);
    const start = statements.find((s) => actionsOf(s).includes('states:StartExecution'));
    expect(start?.Resource).toEqual({ Ref: ids.stateMachine });
    const read = statements.find((s) => actionsOf(s).includes('s3:GetObjectVersionTagging'));
    expect(read?.Resource).toEqual(objectsOf(ids.staging));
    expect(statements.flatMap(actionsOf)).not.toContain('s3:PutObject');
  });
});

describe('buckets', () => {
  test('new buckets are versioned, encrypted, TLS-only, private and access-logged', () => {
    for (const id of [ids.staging, ids.destination, ids.quarantine]) {
      const bucket = template.findResources('AWS::S3::Bucket')[id] as { Properties: Record<string, unknown> };
      expect(bucket.Properties).toMatchObject({
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LoggingConfiguration: { DestinationBucketName: expect.anything() },
      });
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  test('only the staging bucket sends events to EventBridge', () => {
    const withEventBridge = template.findResources('Custom::S3BucketNotifications', {
      Properties: { NotificationConfiguration: { EventBridgeConfiguration: {} } },
    });
    const buckets = Object.values(withEventBridge).map(
      (r) => (r as { Properties: { BucketName: unknown } }).Properties.BucketName,
    );
    expect(buckets).toEqual([{ Ref: ids.staging }]);
  });

  test.each(['staging', 'destination', 'quarantine'] as const)(
    'the %s bucket denies scan-* tag writes and verdict removal to everyone but the state machine',
    (which) => {
      const exceptPipeline = { ArnNotLike: { 'aws:PrincipalArn': [arnOf(ids.stateMachineRole)] } };
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: ids[which] },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: Match.arrayWith(['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging']),
              Resource: objectsOf(ids[which]),
              Condition: {
                'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': SCAN_TAG_KEY_PATTERNS },
                ...exceptPipeline,
              },
            }),
            Match.objectLike({
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: Match.arrayWith([
                's3:DeleteObjectTagging',
                's3:DeleteObjectVersionTagging',
                's3:PutObjectTagging',
              ]),
              Resource: objectsOf(ids[which]),
              Condition: { Null: { [`s3:ExistingObjectTag/${TAG_KEYS.result}`]: 'false' }, ...exceptPipeline },
            }),
            // RequestObjectTagKeys only reflects an x-amz-tagging header and no key names the tagging
            // directive: any copy could keep the source's tags, so only the pipeline copies.
            Match.objectLike({
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 's3:PutObject',
              Resource: objectsOf(ids[which]),
              Condition: {
                Null: { 's3:x-amz-copy-source': 'false' },
                ...exceptPipeline,
              },
            }),
            Match.objectLike({
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 's3:ReplicateTags',
              Resource: objectsOf(ids[which]),
              Condition: exceptPipeline,
            }),
          ]),
        },
      });
    },
  );

  test('by default nobody but the three pipeline roles may read staging objects, whatever their tags', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: ids.staging },
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: 'DenyStagingReadsExceptPipeline',
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectVersionForReplication'],
            Resource: objectsOf(ids.staging),
            Condition: {
              ArnNotLike: {
                'aws:PrincipalArn': [arnOf(ids.stateMachineRole), arnOf(ids.startScanRole), arnOf(ids.taskRole)],
              },
            },
          },
        ]),
      },
    });
  });

  test.each(['destination', 'quarantine'] as const)(
    'nobody but the state machine may write objects or tags into the %s bucket',
    (which) => {
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: ids[which] },
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'DenyObjectWritesExceptPipeline',
              Effect: 'Deny',
              Principal: { AWS: '*' },
              // CDK sorts the actions of a rendered statement.
              Action: [
                's3:DeleteObjectTagging',
                's3:DeleteObjectVersionTagging',
                's3:PutObject',
                's3:PutObjectTagging',
                's3:PutObjectVersionTagging',
                's3:ReplicateObject',
                's3:ReplicateTags',
              ],
              Resource: objectsOf(ids[which]),
              Condition: { ArnNotLike: { 'aws:PrincipalArn': [arnOf(ids.stateMachineRole)] } },
            },
          ]),
        },
      });
    },
  );

  test('the staging bucket takes uploads from anyone the owner allows: no write deny beyond the tag rules', () => {
    const policies = JSON.stringify(
      template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: ids.staging } } }),
    );
    expect(policies).not.toContain('DenyObjectWritesExceptPipeline');
  });

  test('quarantined objects are readable by the pipeline only', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: ids.quarantine },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: Match.arrayWith(['s3:GetObject', 's3:GetObjectVersion']),
            Condition: { ArnNotLike: { 'aws:PrincipalArn': [arnOf(ids.stateMachineRole)] } },
          }),
        ]),
      },
    });
  });
});

describe('events and queues', () => {
  test('the rule sends Object Created events of the staging bucket to scan-requests, with a DLQ', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: ids.staging }] } },
      },
      Targets: [Match.objectLike({ Arn: arnOf(ids.scanRequests), DeadLetterConfig: { Arn: Match.anyValue() } })],
    });
  });

  test('a lost worker never sends a scan job to its DLQ: the worker fails the task first', () => {
    const queue = template.findResources('AWS::SQS::Queue')[ids.scanJobs] as {
      Properties: { RedrivePolicy?: { maxReceiveCount: number } };
    };
    expect(queue.Properties.RedrivePolicy?.maxReceiveCount).toBe(SCAN_JOBS_MAX_RECEIVE_COUNT);
    expect(SCAN_JOBS_MAX_RECEIVE_COUNT).toBeGreaterThan(MAX_JOB_DELIVERIES + 1);
  });

  test.each(['scanRequests', 'scanJobs'] as const)('%s has a dead-letter queue', (which) => {
    const queue = template.findResources('AWS::SQS::Queue')[ids[which]] as {
      Properties: { RedrivePolicy?: { deadLetterTargetArn: unknown } };
    };
    const dlqId = mustRef(queue.Properties.RedrivePolicy?.deadLetterTargetArn, 'DLQ');
    expect(template.findResources('AWS::SQS::Queue')[dlqId]).toBeDefined();
    expect(dlqId).not.toBe(ids[which]);
  });

  test('every queue is encrypted and refuses plain HTTP', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    // scan-requests, scan-jobs, results-metrics and a dead-letter queue for each.
    expect(Object.keys(queues).length).toBe(6);
    for (const [id, queue] of Object.entries(queues)) {
      expect((queue as { Properties: Record<string, unknown> }).Properties.SqsManagedSseEnabled).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: Match.arrayWith([{ Ref: id }]),
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  test('the results topic is encrypted with a rotated customer key', () => {
    const [, topic] = only(template.findResources('AWS::SNS::Topic'), 'topic');
    const keyId = mustRef(
      (topic as { Properties: { KmsMasterKeyId: unknown } }).Properties.KmsMasterKeyId,
      'topic key',
    );
    expect(template.findResources('AWS::KMS::Key', { Properties: { EnableKeyRotation: true } })[keyId]).toBeDefined();
  });
});

describe('start-scan function', () => {
  test('runs Node 22 on ARM64 with reserved concurrency and the start-scan configuration', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      ReservedConcurrentExecutions: 10,
      Environment: {
        Variables: {
          STATE_MACHINE_ARN: { Ref: ids.stateMachine },
          PIPELINE_BUCKETS: { 'Fn::Join': ['', [{ Ref: ids.destination }, ',', { Ref: ids.quarantine }]] },
          EXCLUDED_KEY_PREFIXES: '',
          EXCLUDED_KEY_SUFFIXES: '',
          SCAN_QUEUE_WAIT_SECONDS: '1800',
          SCAN_BASE_TIMEOUT_SECONDS: '1200',
          SCAN_MIN_BYTES_PER_SECOND: '2097152',
          SCAN_MAX_TIMEOUT_SECONDS: '10800',
          COPY_SOURCE_ENCODING: 'url',
          POWERTOOLS_SERVICE_NAME: 'start-scan',
          POWERTOOLS_METRICS_NAMESPACE: 'Scanflow',
        },
      },
    });
  });

  test('consumes scan-requests with partial batch failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arnOf(ids.scanRequests),
      FunctionName: { Ref: ids.startScan },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });
});

describe('worker pool', () => {
  test('the task runs on ARM64 Fargate, sized for clamd, with the worker configuration', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      Cpu: '1024',
      Memory: '4096',
      EphemeralStorage: { SizeInGiB: 21 },
      ContainerDefinitions: [
        Match.objectLike({
          StopTimeout: 120,
          Environment: Match.arrayWith([
            { Name: 'SCAN_JOBS_QUEUE_URL', Value: { Ref: ids.scanJobs } },
            { Name: 'WORKER_CONCURRENCY', Value: '4' },
            { Name: 'MAX_OBJECT_BYTES', Value: '1073741824' },
            { Name: 'HEARTBEAT_INTERVAL_SECONDS', Value: '20' },
            { Name: 'METRICS_NAMESPACE', Value: 'Scanflow' },
            { Name: 'METRICS_DIMENSIONS', Value: 'Pipeline=scanflow' },
            { Name: 'SHUTDOWN_GRACE_SECONDS', Value: '110' },
          ]),
          LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
        }),
      ],
    });
  });

  test('the service runs in private subnets without a public IP, sized by autoscaling from zero workers', () => {
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      // Left to autoscaling: a value here would reset the pool size on every deploy.
      DesiredCount: Match.absent(),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 0, MaxCapacity: 10 });
  });

  test('workers accept no inbound traffic and may only leave over HTTPS', () => {
    const [group] = Object.values(
      template.findResources('AWS::EC2::SecurityGroup', {
        Properties: { GroupDescription: Match.stringLikeRegexp('scanner workers') },
      }),
    ) as Array<{
      Properties: { SecurityGroupIngress?: unknown[]; SecurityGroupEgress: Array<Record<string, unknown>> };
    }>;
    expect(group?.Properties.SecurityGroupIngress).toBeUndefined();
    expect(group?.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' }),
    ]);
  });

  test('the VPC has an S3 gateway endpoint and flow logs', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])] }),
    });
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  test('scales on the scan-jobs backlog (waiting + in flight), to zero and up to the maximum', () => {
    const scaleOut = new Capture();
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'StepScaling',
      StepScalingPolicyConfiguration: {
        AdjustmentType: 'ExactCapacity',
        StepAdjustments: scaleOut,
      },
    });
    const policies = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy')).map(
      (p) =>
        (
          p as {
            Properties: { StepScalingPolicyConfiguration: { StepAdjustments: Array<{ ScalingAdjustment: number }> } };
          }
        ).Properties.StepScalingPolicyConfiguration.StepAdjustments,
    );
    const adjustments = policies.flat().map((s) => s.ScalingAdjustment);
    expect(Math.min(...adjustments)).toBe(0);
    expect(Math.max(...adjustments)).toBe(10);

    const backlog = {
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'visible + inFlight' }),
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'AWS/SQS',
              MetricName: 'ApproximateNumberOfMessagesVisible',
              Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.scanJobs, 'QueueName'] } }],
            },
          }),
        }),
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'AWS/SQS',
              MetricName: 'ApproximateNumberOfMessagesNotVisible',
              Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.scanJobs, 'QueueName'] } }],
            },
          }),
        }),
      ]),
    };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ...backlog,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ...backlog,
      ComparisonOperator: 'LessThanOrEqualToThreshold',
      Threshold: 0,
    });
  });

  test('the worker container repeats the image health check (ECS ignores HEALTHCHECK)', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Image: Match.objectLike({ 'Fn::Sub': Match.stringLikeRegexp('container-assets') }),
          HealthCheck: Match.objectLike({
            Command: ['CMD', 'clamdscan', '--config-file=/etc/clamav/clamd.conf', '--ping', '1'],
          }),
        }),
      ],
    });
  });
});

describe('monitoring', () => {
  test('alarms on final Error verdicts (ScanResults from record-result), not on retried scan attempts', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Scanflow',
      MetricName: 'ScanResults',
      Dimensions: Match.arrayWith([
        { Name: 'Pipeline', Value: 'scanflow' },
        { Name: 'Verdict', Value: 'Error' },
      ]),
      Statistic: 'Sum',
      Threshold: 1,
    });
    const onAttempts = template.findResources('AWS::CloudWatch::Alarm', {
      Properties: { MetricName: 'ObjectsScanned' },
    });
    expect(Object.keys(onAttempts)).toEqual([]);
  });

  test('alarms on objects that got a verdict but could not be moved', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Scanflow',
      MetricName: 'MoveFailures',
      Dimensions: [{ Name: 'Pipeline', Value: 'scanflow' }],
    });
  });

  test.each([
    ['scan-requests DLQ depth', 'ApproximateNumberOfMessagesVisible'],
    ['scan-jobs DLQ depth', 'ApproximateNumberOfMessagesVisible'],
    ['oldest scan job age', 'ApproximateAgeOfOldestMessage'],
  ])('alarms on %s', (_name, metricName) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/SQS', MetricName: metricName });
  });

  test('alarms on DLQ depth for the three dead-letter queues and on the age of scan-jobs', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: Record<string, unknown> }).Properties,
    );
    const queueOf = (alarm: Record<string, unknown>) =>
      [...referencedIds(alarm.Dimensions)].filter((id) => template.findResources('AWS::SQS::Queue')[id] !== undefined);
    const dlqAlarms = alarms.filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible').flatMap(queueOf);
    expect(dlqAlarms).not.toContain(ids.scanJobs);
    expect(dlqAlarms).not.toContain(ids.scanRequests);
    expect(dlqAlarms.length).toBe(3);
    const ageAlarm = alarms.find((a) => a.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(ageAlarm && queueOf(ageAlarm)).toEqual([ids.scanJobs]);
    expect(ageAlarm?.Threshold).toBe(900);
  });

  test('alarms on failed executions of scan-object', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/States',
      MetricName: 'ExecutionsFailed',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: ids.stateMachine } }],
    });
  });

  test('a dashboard shows verdicts, bytes, duration, queue depth and age, workers and executions', () => {
    const body = new Capture();
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
    const text = JSON.stringify(body.asObject());
    for (const expected of [
      'ScanResults',
      'ObjectsScanned',
      'BytesScanned',
      'ScanDuration',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'RunningTaskCount',
      'ExecutionsFailed',
    ]) {
      expect(text).toContain(expected);
    }
  });

  test("every metric the dashboard reads from the pipeline's namespace is one a pipeline part publishes", () => {
    const body = new Capture();
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
    const text = JSON.stringify(body.asObject());
    // Metric rows are ["<namespace>","<name>",…]; the namespace is the stack's (Scanflow by default).
    const read = new Set([...text.matchAll(/\[\\"Scanflow\\",\\"([A-Za-z]+)\\"/g)].map((m) => m[1] ?? ''));
    const published = new Set<string>([
      ...Object.values(METRIC_NAMES),
      ...Object.values(SIGNATURE_METRICS),
      ...Object.values(RESULT_METRICS),
      ...Object.values(START_SCAN_METRICS),
    ]);
    expect(read.size).toBeGreaterThanOrEqual(5);
    expect([...read].filter((name) => !published.has(name))).toEqual([]);
    for (const name of Object.values(METRIC_NAMES)) expect(read).toContain(name);
  });
});

describe('record-result', () => {
  function recordResult(): { id: string; role: string; queue: string } {
    const [id, fn] = only(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Environment: { Variables: { PIPELINE_NAME: 'scanflow', POWERTOOLS_SERVICE_NAME: 'record-result' } },
        },
      }),
      'record-result function',
    );
    const [, mapping] = only(
      template.findResources('AWS::Lambda::EventSourceMapping', { Properties: { FunctionName: { Ref: id } } }),
      'record-result event source',
    );
    const source = (mapping as { Properties: { EventSourceArn: unknown } }).Properties.EventSourceArn;
    return {
      id,
      role: mustRef((fn as { Properties: { Role: unknown } }).Properties.Role, 'record-result role'),
      queue: mustRef(source, 'record-result queue'),
    };
  }

  test('reads every result notification, raw, from a queue subscribed to the results topic', () => {
    const { id, queue } = recordResult();
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'sqs',
      TopicArn: { Ref: ids.topic },
      Endpoint: arnOf(queue),
      RawMessageDelivery: true,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: id },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 5 }),
      SqsManagedSseEnabled: true,
    });
  });

  test('publishes ScanResults into the pipeline namespace as an ARM64 Node 22 function', () => {
    const { id } = recordResult();
    const fn = template.findResources('AWS::Lambda::Function')[id] as {
      Properties: { Runtime: string; Architectures: string[]; Environment: { Variables: Record<string, string> } };
    };
    expect(fn.Properties.Runtime).toBe('nodejs22.x');
    expect(fn.Properties.Architectures).toEqual(['arm64']);
    expect(fn.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe('Scanflow');
  });

  test('may only consume its queue and write its logs: no S3, Step Functions or SNS rights', () => {
    const { role } = recordResult();
    const actions = statementsOfRole(template, role).flatMap(actionsOf);
    expect(actions.filter((a) => /^(s3|states|sns):/.test(a))).toEqual([]);
    expect(actions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
  });
});
