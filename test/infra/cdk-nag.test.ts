import { type App, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { synthScanflow } from './synth.js';

function violations(app: App): string[] {
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
}

function acknowledgements(root: IConstruct): Array<{ path: string; id: string; reason: string }> {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
}

describe('cdk-nag AwsSolutions', () => {
  test('the default deployment has no unacknowledged finding', () => {
    const { app } = synthScanflow({}, { prebuiltImage: true });
    expect(violations(app)).toEqual([]);
  });

  test('imported buckets, a KMS key, blocked unscanned reads and an alarm topic have none either', () => {
    const { app } = synthScanflow(
      (stack) => ({
        existingProtectedBucketNames: ['partner-uploads', 'sftp-landing'],
        existingDestinationBucketName: 'clean-files',
        existingQuarantineBucketName: 'quarantined-files',
        blockUnscannedReads: true,
        bucketEncryptionKey: kms.Key.fromKeyArn(
          stack,
          'Key',
          'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        ),
        alarmTopic: sns.Topic.fromTopicArn(stack, 'Alarms', 'arn:aws:sns:eu-west-1:123456789012:ops-alarms'),
      }),
      { prebuiltImage: true },
    );
    expect(violations(app)).toEqual([]);
  });

  test('new buckets encrypted with a customer key have none either', () => {
    const { app } = synthScanflow(
      (stack) => ({ bucketEncryptionKey: new kms.Key(stack, 'BucketKey', { enableKeyRotation: true }) }),
      {
        prebuiltImage: true,
      },
    );
    expect(violations(app)).toEqual([]);
  });

  test('every acknowledgement names one rule (or one finding) and gives a written reason', () => {
    const { app } = synthScanflow({}, { prebuiltImage: true });
    // CDK itself records some acknowledgements (e.g. CloudFormation-Validate::…); ours are the AwsSolutions ones.
    const acks = acknowledgements(app).filter((a) => a.id.includes('AwsSolutions-'));
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.id).toMatch(/^(Annotation::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/i);
      expect(ack.reason.length).toBeGreaterThan(40);
    }
    // Acknowledging a whole rule would hide new wildcards: IAM5 is only ever acknowledged per finding.
    expect(acks.filter((a) => /AwsSolutions-IAM5$/.test(a.id))).toEqual([]);
  });
});
