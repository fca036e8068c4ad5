import { Match, type Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { asList, identityStatements, type PolicyStatementJson, synthScanflow } from './synth.js';

/** Buckets that already exist: EventBridge is switched on without touching their other notifications. */
let template: Template;
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ALARM_TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:ops-alarms';

beforeAll(() => {
  ({ template } = synthScanflow(
    (stack) => ({
      existingProtectedBucketNames: ['partner-uploads', 'sftp-landing'],
      existingDestinationBucketName: 'clean-files',
      existingQuarantineBucketName: 'quarantined-files',
      blockUnscannedReads: true,
      excludedKeyPrefixes: ['tmp/', '.staging/'],
      excludedKeySuffixes: ['.part'],
      bucketEncryptionKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
      alarmTopic: sns.Topic.fromTopicArn(stack, 'Alarms', ALARM_TOPIC_ARN),
      minWorkers: 1,
      maxWorkers: 40,
      workerConcurrency: 8,
      startScanBatchSize: 50,
    }),
    { prebuiltImage: true },
  ));
});

const objectsOfBucket = (name: string) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${name}/*`]],
});

test('EventBridge is turned on for each imported protected bucket by the unmanaged notifications resource', () => {
  for (const bucket of ['partner-uploads', 'sftp-landing']) {
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: bucket,
      NotificationConfiguration: { EventBridgeConfiguration: {} },
      // Managed=false: the handler reads the existing configuration and keeps it.
      Managed: false,
    });
  }
  template.resourceCountIs('Custom::S3BucketNotifications', 2);
});

test('no bucket is created and no bucket policy replaces the owners’ policies', () => {
  const buckets = Object.values(template.findResources('AWS::S3::Bucket'));
  // Only the access-log bucket is new.
  expect(buckets.length).toBe(1);
  const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'));
  for (const policy of policies)
    expect(JSON.stringify(policy)).not.toMatch(/partner-uploads|sftp-landing|clean-files|quarantined-files/);
});

test('the tag-protection and read-blocking statements are published, one output per bucket, for the owners to merge', () => {
  const outputs = template.findOutputs('*', { Description: Match.stringLikeRegexp('imported bucket') });
  const byBucket = new Map(
    Object.values(outputs).map((o) => [
      /imported bucket (\S+)/.exec(String(o.Description))?.[1],
      JSON.stringify(o.Value),
    ]),
  );
  expect([...byBucket.keys()].sort()).toEqual(['clean-files', 'partner-uploads', 'quarantined-files', 'sftp-landing']);
  for (const [bucket, text] of byBucket) {
    expect(text).toContain(`${bucket}/*`);
    expect(text).toContain('DenyScanTagWritesExceptPipeline');
    expect(text).toContain('DenyVerdictTagRemovalExceptPipeline');
    // Reads are blocked in the protected buckets only.
    expect(text.includes('DenyReadsOfObjectsNotScannedClean')).toBe(
      bucket === 'partner-uploads' || bucket === 'sftp-landing',
    );
    // CloudFormation limits an output value to 4,096 characters.
    expect(text.length).toBeLessThan(4096);
  }
});

test('the rule matches both buckets and leaves out excluded prefixes', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: {
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: ['partner-uploads', 'sftp-landing'] },
        object: { key: [{ 'anything-but': { prefix: ['tmp/', '.staging/'] } }] },
      },
    },
  });
});

test('start-scan skips the pipeline buckets and excluded keys, and batches with a window above 10', () => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Environment: {
      Variables: Match.objectLike({
        PIPELINE_BUCKETS: 'clean-files,quarantined-files',
        EXCLUDED_KEY_PREFIXES: 'tmp/,.staging/',
        EXCLUDED_KEY_SUFFIXES: '.part',
      }),
    },
  });
  template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    BatchSize: 50,
    MaximumBatchingWindowInSeconds: 1,
    FunctionResponseTypes: ['ReportBatchItemFailures'],
  });
});

test('S3 permissions name the imported buckets, and KMS use is limited to the given key', () => {
  const names = ['partner-uploads', 'sftp-landing', 'clean-files', 'quarantined-files'];
  const s3Object = identityStatements(template)
    .map((s) => s.statement)
    .filter((s: PolicyStatementJson) => asList(s.Action).some((a) => a.startsWith('s3:') && a.includes('Object')));
  for (const statement of s3Object) {
    for (const resource of asList(statement.Resource)) {
      expect(names.some((name) => JSON.stringify(resource) === JSON.stringify(objectsOfBucket(name)))).toBe(true);
    }
  }
  const kmsOnKey = identityStatements(template)
    .map((s) => s.statement)
    .filter((s) => asList(s.Action).some((a) => a.startsWith('kms:')) && asList(s.Resource).includes(KEY_ARN));
  expect(kmsOnKey.flatMap((s) => asList(s.Action)).sort()).toEqual([
    'kms:Decrypt',
    'kms:Decrypt',
    'kms:GenerateDataKey',
  ]);
});

test('alarms notify the given topic', () => {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
    (a) => (a as { Properties: { AlarmName?: string; AlarmActions?: unknown[] } }).Properties,
  );
  const operatorAlarms = alarms.filter((a) => a.AlarmName?.startsWith('scanflow-'));
  expect(operatorAlarms.length).toBe(9);
  for (const alarm of operatorAlarms) expect(alarm.AlarmActions).toEqual([ALARM_TOPIC_ARN]);
});

test('scaling steps spread up to 40 workers, never below the minimum of 1', () => {
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 1, MaxCapacity: 40 });
  const adjustments = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy')).flatMap(
    (p) =>
      (
        p as {
          Properties: { StepScalingPolicyConfiguration: { StepAdjustments: Array<{ ScalingAdjustment: number }> } };
        }
      ).Properties.StepScalingPolicyConfiguration.StepAdjustments,
  );
  const capacities = adjustments.map((s) => s.ScalingAdjustment);
  expect(Math.min(...capacities)).toBe(1);
  expect(Math.max(...capacities)).toBe(40);
  expect(adjustments.length).toBeLessThanOrEqual(20);
});
