import * as iam from 'aws-cdk-lib/aws-iam';
import { SCAN_TAG_PREFIX, TAG_KEYS } from '../../functions/commons/verdict.js';

/**
 * Bucket-policy statements that keep the verdict tags honest. Only the pipeline writes `scan-*` tags, so a
 * Deny with an `aws:PrincipalArn` exception is the one control that also binds administrators of the
 * account: an identity policy granting s3:* cannot override it.
 */

const OBJECT_TAG_WRITES = ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'];
const OBJECT_TAG_DELETES = ['s3:DeleteObjectTagging', 's3:DeleteObjectVersionTagging'];
const OBJECT_READS = ['s3:GetObject', 's3:GetObjectVersion'];

function objectsOf(bucketArn: string): string {
  return `${bucketArn}/*`;
}

function exceptFor(principalArns: readonly string[]): Record<string, Record<string, string[]>> {
  return { ArnNotLike: { 'aws:PrincipalArn': [...principalArns] } };
}

/**
 * Denies, to every principal but `tagWriterArns`:
 * - any upload (PutObject, including copies and POST) or tagging request that names a `scan-*` key;
 * - replacing or deleting the tag set of an object that already carries a verdict (PutObjectTagging replaces
 *   the whole set, so without this a user could "untag" an Infected verdict).
 */
export function tagProtectionStatements(bucketArn: string, tagWriterArns: readonly string[]): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'DenyScanTagWritesExceptPipeline',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject', ...OBJECT_TAG_WRITES],
      resources: [objectsOf(bucketArn)],
      conditions: {
        'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': [`${SCAN_TAG_PREFIX}*`] },
        ...exceptFor(tagWriterArns),
      },
    }),
    new iam.PolicyStatement({
      sid: 'DenyVerdictTagRemovalExceptPipeline',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...OBJECT_TAG_WRITES, ...OBJECT_TAG_DELETES],
      resources: [objectsOf(bucketArn)],
      conditions: {
        Null: { [`s3:ExistingObjectTag/${TAG_KEYS.result}`]: 'false' },
        ...exceptFor(tagWriterArns),
      },
    }),
  ];
}

/**
 * Opt-in `blockUnscannedReads`: only objects tagged `scan-result=Clean` may be read, except by the pipeline
 * roles that must read an object to scan and move it. A missing tag counts as "not Clean".
 */
export function blockUnscannedReadsStatement(
  bucketArn: string,
  pipelineReaderArns: readonly string[],
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'DenyReadsOfObjectsNotScannedClean',
    effect: iam.Effect.DENY,
    principals: [new iam.AnyPrincipal()],
    actions: OBJECT_READS,
    resources: [objectsOf(bucketArn)],
    conditions: {
      StringNotEquals: { [`s3:ExistingObjectTag/${TAG_KEYS.result}`]: 'Clean' },
      ...exceptFor(pipelineReaderArns),
    },
  });
}

/** Quarantined objects are readable by the pipeline and the named security role only. */
export function quarantineReadStatement(bucketArn: string, allowedReaderArns: readonly string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'DenyQuarantineReadsExceptPipelineAndSecurity',
    effect: iam.Effect.DENY,
    principals: [new iam.AnyPrincipal()],
    actions: [...OBJECT_READS, 's3:GetObjectTagging', 's3:GetObjectVersionTagging'],
    resources: [objectsOf(bucketArn)],
    conditions: exceptFor(allowedReaderArns),
  });
}
