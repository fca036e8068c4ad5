import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { STAGING_READER_ARNS_MAX_LENGTH } from '../../infra/lib/scan-pipeline-props.js';
import type { ScanflowStack } from '../../infra/lib/scanflow-stack.js';
import {
  asList,
  identityStatements,
  type PolicyStatementJson,
  pipelineRoleIds,
  printedBucketPolicies,
  SCAN_TAG_KEY_PATTERNS,
  synthScanflow,
} from './synth.js';

/** Buckets that already exist: EventBridge is switched on without touching their other notifications. */
let template: Template;
let stack: ScanflowStack;
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ALARM_TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:ops-alarms';

const SECURITY_ROLE = 'arn:aws:iam::123456789012:role/SecurityResponders';
const INVESTIGATORS = ['arn:aws:iam::123456789012:role/Investigators'];

beforeAll(() => {
  ({ template, stack } = synthScanflow(
    (stack) => ({
      existingProtectedBucketNames: ['partner-uploads', 'sftp-landing'],
      existingDestinationBucketName: 'clean-files',
      existingQuarantineBucketName: 'quarantined-files',
      blockUnscannedReads: true,
      quarantineReaderRoleArn: SECURITY_ROLE,
      stagingReaderRoleArns: INVESTIGATORS,
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

describe('the printed policy of each imported bucket', () => {
  const role = (id: string) => `<${id}.Arn>`;
  const objects = (bucket: string) => `arn:<AWS::Partition>:s3:::${bucket}/*`;
  const policyOf = (bucket: string) => {
    const policy = printedBucketPolicies(template).get(bucket);
    if (!policy) throw new Error(`no printed policy for ${bucket}`);
    return policy;
  };
  const tagProtection = (bucket: string): PolicyStatementJson[] => {
    const stateMachine = [role(pipelineRoleIds(template).stateMachine)];
    return [
      {
        Sid: 'DenyScanTagWritesExceptPipeline',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'],
        Resource: objects(bucket),
        Condition: {
          'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': SCAN_TAG_KEY_PATTERNS },
          ArnNotLike: { 'aws:PrincipalArn': stateMachine },
        },
      },
      {
        Sid: 'DenyVerdictTagRemovalExceptPipeline',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: [
          's3:PutObjectTagging',
          's3:PutObjectVersionTagging',
          's3:DeleteObjectTagging',
          's3:DeleteObjectVersionTagging',
        ],
        Resource: objects(bucket),
        Condition: {
          Null: { 's3:ExistingObjectTag/scan-result': 'false' },
          ArnNotLike: { 'aws:PrincipalArn': stateMachine },
        },
      },
      {
        Sid: 'DenyServerSideCopiesExceptPipeline',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObject',
        Resource: objects(bucket),
        Condition: {
          Null: { 's3:x-amz-copy-source': 'false' },
          ArnNotLike: { 'aws:PrincipalArn': stateMachine },
        },
      },
      {
        Sid: 'DenyReplicatedTagsExceptPipeline',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:ReplicateTags',
        Resource: objects(bucket),
        Condition: { ArnNotLike: { 'aws:PrincipalArn': stateMachine } },
      },
    ];
  };
  const writesOnlyByPipeline = (bucket: string): PolicyStatementJson => ({
    Sid: 'DenyObjectWritesExceptPipeline',
    Effect: 'Deny',
    Principal: { AWS: '*' },
    Action: [
      's3:PutObject',
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
      's3:DeleteObjectTagging',
      's3:DeleteObjectVersionTagging',
      's3:ReplicateObject',
      's3:ReplicateTags',
    ],
    Resource: objects(bucket),
    Condition: { ArnNotLike: { 'aws:PrincipalArn': [role(pipelineRoleIds(template).stateMachine)] } },
  });

  test.each(['partner-uploads', 'sftp-landing'])(
    'protected %s: tag protection, and reads only of Clean objects except by the pipeline and the staging readers',
    (bucket) => {
      const roles = pipelineRoleIds(template);
      const policy = policyOf(bucket);
      expect(policy.role).toBe('staging');
      expect(policy.statements).toEqual([
        ...tagProtection(bucket),
        {
          Sid: 'DenyReadsOfObjectsNotScannedClean',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: ['s3:GetObject', 's3:GetObjectVersion'],
          Resource: objects(bucket),
          Condition: {
            StringNotEquals: { 's3:ExistingObjectTag/scan-result': 'Clean' },
            ArnNotLike: {
              'aws:PrincipalArn': [
                role(roles.stateMachine),
                role(roles.startScan),
                role(roles.worker),
                ...INVESTIGATORS,
              ],
            },
          },
        },
      ]);
    },
  );

  test('destination: tag protection, and no writes but the pipeline’s', () => {
    const policy = policyOf('clean-files');
    expect(policy.role).toBe('destination');
    expect(policy.statements).toEqual([...tagProtection('clean-files'), writesOnlyByPipeline('clean-files')]);
  });

  test('quarantine: tag protection, no writes but the pipeline’s, and reads only by the pipeline and security', () => {
    const policy = policyOf('quarantined-files');
    expect(policy.role).toBe('quarantine');
    expect(policy.statements).toEqual([
      ...tagProtection('quarantined-files'),
      writesOnlyByPipeline('quarantined-files'),
      {
        Sid: 'DenyQuarantineReadsExceptPipelineAndSecurity',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: [
          's3:GetObject',
          's3:GetObjectVersion',
          's3:GetObjectTagging',
          's3:GetObjectVersionTagging',
          's3:GetObjectVersionForReplication',
        ],
        Resource: objects('quarantined-files'),
        Condition: {
          ArnNotLike: { 'aws:PrincipalArn': [role(pipelineRoleIds(template).stateMachine), SECURITY_ROLE] },
        },
      },
    ]);
  });

  test('fits a CloudFormation output (4,096 characters) with the longest role ARNs and partition', () => {
    // A role name is at most 64 characters; aws-us-gov is the longest partition name.
    const longest = ({ ref }: { ref?: string }) =>
      ref === 'AWS::Partition' ? 'aws-us-gov' : `arn:aws-us-gov:iam::123456789012:role/${'r'.repeat(64)}`;
    const policies = printedBucketPolicies(template, longest);
    expect(policies.size).toBe(4);
    for (const { text } of policies.values()) expect(text.length).toBeLessThanOrEqual(4096);
  });
});

test('the printed policies fit an output with the most staging readers allowed and the longest values', () => {
  // Role names hold up to 64 characters, paths up to 512.
  const reader = (i: number) =>
    `arn:aws-us-gov:iam::123456789012:role/${'p/'.repeat(20)}${'r'.repeat(62)}${String(i).padStart(2, '0')}`;
  const readers: string[] = [];
  while ([...readers, reader(readers.length)].join('').length <= STAGING_READER_ARNS_MAX_LENGTH)
    readers.push(reader(readers.length));
  const { template: crowded } = synthScanflow(
    {
      existingProtectedBucketNames: ['a'.repeat(63)],
      existingDestinationBucketName: 'b'.repeat(63),
      existingQuarantineBucketName: 'c'.repeat(63),
      stagingReaderRoleArns: readers,
      quarantineReaderRoleArn: reader(99).replace(/p\//g, 'q/'.repeat(10)),
    },
    { prebuiltImage: true },
  );
  const longest = ({ ref }: { ref?: string }) =>
    ref === 'AWS::Partition' ? 'aws-us-gov' : `arn:aws-us-gov:iam::123456789012:role/${'r'.repeat(64)}`;
  const policies = printedBucketPolicies(crowded, longest);
  expect(policies.size).toBe(3);
  for (const { text } of policies.values()) expect(text.length).toBeLessThanOrEqual(4096);
});

describe('defaults for imported buckets', () => {
  const importedOnly = (extra: { blockUnscannedReads?: boolean }) =>
    printedBucketPolicies(
      synthScanflow(
        {
          existingProtectedBucketNames: ['partner-uploads'],
          existingDestinationBucketName: 'clean-files',
          existingQuarantineBucketName: 'quarantined-files',
          ...extra,
        },
        { prebuiltImage: true },
      ).template,
    );

  test('reads of protected objects not scanned Clean are blocked unless blockUnscannedReads is false', () => {
    const sids = (policies: ReturnType<typeof importedOnly>) =>
      policies.get('partner-uploads')?.statements.map((s) => s.Sid);
    expect(sids(importedOnly({}))).toContain('DenyReadsOfObjectsNotScannedClean');
    expect(sids(importedOnly({ blockUnscannedReads: false }))).not.toContain('DenyReadsOfObjectsNotScannedClean');
  });

  test('the quarantine is readable by the pipeline alone when no security role is named', () => {
    const quarantine = importedOnly({}).get('quarantined-files')?.statements.at(-1);
    expect(quarantine?.Sid).toBe('DenyQuarantineReadsExceptPipelineAndSecurity');
    expect(asList(quarantine?.Condition?.ArnNotLike as unknown)).toEqual([
      { 'aws:PrincipalArn': [expect.stringMatching(/^<.+\.Arn>$/)] },
    ]);
  });
});

test('a warning says the imported protected buckets must be versioned', () => {
  Annotations.fromStack(stack).hasWarning(
    '/Scanflow/Pipeline',
    Match.stringLikeRegexp('must have versioning Enabled \\(partner-uploads, sftp-landing\\)'),
  );
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
  // 8, plus UnversionedObjects, SignatureAge and (minWorkers 1) SignatureFreshnessMissing.
  expect(operatorAlarms.length).toBe(11);
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
