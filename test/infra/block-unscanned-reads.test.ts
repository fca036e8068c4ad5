import { Duration } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { referencedId, synthScanflow } from './synth.js';

/** New buckets with the opt-ins: a customer key, blocked unscanned reads, security and staging readers, expiry. */
let template: Template;
const SECURITY_ROLE = 'arn:aws:iam::123456789012:role/SecurityResponders';
const INVESTIGATORS = ['arn:aws:iam::123456789012:role/Investigators', 'arn:aws:iam::123456789012:role/ops/OnCall'];

beforeAll(() => {
  ({ template } = synthScanflow(
    (stack) => ({
      bucketEncryptionKey: new kms.Key(stack, 'BucketKey', { enableKeyRotation: true }),
      blockUnscannedReads: true,
      quarantineReaderRoleArn: SECURITY_ROLE,
      stagingReaderRoleArns: INVESTIGATORS,
      quarantineExpiration: Duration.days(90),
    }),
    { prebuiltImage: true },
  ));
});

function ids(): {
  staging: string;
  quarantine: string;
  destination: string;
  stateMachineRole: string;
  startScanRole: string;
  taskRole: string;
} {
  const [rule] = Object.values(template.findResources('AWS::Events::Rule')) as Array<{
    Properties: { EventPattern: { detail: { bucket: { name: unknown[] } } } };
  }>;
  const [sm] = Object.values(template.findResources('AWS::StepFunctions::StateMachine')) as Array<{
    Properties: { DefinitionSubstitutions: Record<string, unknown>; RoleArn: unknown };
  }>;
  const [fn] = Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { STATE_MACHINE_ARN: Match.anyValue() } } },
    }),
  ) as Array<{
    Properties: { Role: unknown };
  }>;
  const [task] = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Array<{
    Properties: { TaskRoleArn: unknown };
  }>;
  const need = (v: unknown) => {
    const id = referencedId(v);
    if (!id) throw new Error(`not a reference: ${JSON.stringify(v)}`);
    return id;
  };
  return {
    staging: need(rule?.Properties.EventPattern.detail.bucket.name[0]),
    destination: need(sm?.Properties.DefinitionSubstitutions.DestinationBucket),
    quarantine: need(sm?.Properties.DefinitionSubstitutions.QuarantineBucket),
    stateMachineRole: need(sm?.Properties.RoleArn),
    startScanRole: need(fn?.Properties.Role),
    taskRole: need(task?.Properties.TaskRoleArn),
  };
}

test('a created staging bucket denies every read, Clean or not, except to the three pipeline roles and the staging readers', () => {
  const r = ids();
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    Bucket: { Ref: r.staging },
    PolicyDocument: {
      Statement: Match.arrayWith([
        {
          Sid: 'DenyStagingReadsExceptPipeline',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectVersionForReplication'],
          Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [r.staging, 'Arn'] }, '/*']] },
          Condition: {
            ArnNotLike: {
              'aws:PrincipalArn': [
                { 'Fn::GetAtt': [r.stateMachineRole, 'Arn'] },
                { 'Fn::GetAtt': [r.startScanRole, 'Arn'] },
                { 'Fn::GetAtt': [r.taskRole, 'Arn'] },
                ...INVESTIGATORS,
              ],
            },
          },
        },
      ]),
    },
  });
});

test('blockUnscannedReads adds nothing to a created staging bucket: its reads are already denied outright', () => {
  const r = ids();
  const policies = Object.values(
    template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: r.staging } } }),
  );
  expect(JSON.stringify(policies)).not.toContain('DenyReadsOfObjectsNotScannedClean');
});

test('staging readers get no rights on destination or quarantine', () => {
  const r = ids();
  for (const id of [r.destination, r.quarantine]) {
    const policies = Object.values(
      template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id } } }),
    );
    for (const arn of INVESTIGATORS) expect(JSON.stringify(policies)).not.toContain(arn);
  }
});

test('destination and quarantine are not read-blocked (they only ever hold scanned objects)', () => {
  const r = ids();
  for (const id of [r.destination, r.quarantine]) {
    const policies = Object.values(
      template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id } } }),
    );
    expect(JSON.stringify(policies)).not.toContain('DenyReadsOfObjectsNotScannedClean');
  }
});

test('the security role may read the quarantine', () => {
  const r = ids();
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    Bucket: { Ref: r.quarantine },
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Sid: 'DenyQuarantineReadsExceptPipelineAndSecurity',
          Condition: {
            ArnNotLike: { 'aws:PrincipalArn': [{ 'Fn::GetAtt': [r.stateMachineRole, 'Arn'] }, SECURITY_ROLE] },
          },
        }),
      ]),
    },
  });
});

test('quarantined objects and their old versions expire', () => {
  const r = ids();
  const bucket = template.findResources('AWS::S3::Bucket')[r.quarantine] as {
    Properties: { LifecycleConfiguration: { Rules: unknown[] } };
  };
  expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        ExpirationInDays: 90,
        NoncurrentVersionExpiration: { NoncurrentDays: 90 },
        Status: 'Enabled',
      }),
    ]),
  );
});

test('new buckets use the customer key with bucket keys', () => {
  const r = ids();
  for (const id of [r.staging, r.destination, r.quarantine]) {
    const bucket = template.findResources('AWS::S3::Bucket')[id] as { Properties: { BucketEncryption: unknown } };
    expect(bucket.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: {
            SSEAlgorithm: 'aws:kms',
            KMSMasterKeyID: expect.objectContaining({ 'Fn::GetAtt': expect.any(Array) }),
          },
        },
      ],
    });
  }
});
