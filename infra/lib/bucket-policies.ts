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

function deny(
  sid: string,
  actions: readonly string[],
  bucketArn: string,
  except: readonly string[],
  conditions: Record<string, Record<string, unknown>> = {},
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    effect: iam.Effect.DENY,
    principals: [new iam.AnyPrincipal()],
    actions: [...actions],
    resources: [objectsOf(bucketArn)],
    conditions: { ...conditions, ...exceptFor(except) },
  });
}

/**
 * Every spelling of `text` that differs only in letter case, `text` itself first. IAM's StringLike is
 * case-sensitive and S3 tag keys are too, so `Scan-Result` is a different key that `scan-*` does not match.
 */
export function caseVariants(text: string): string[] {
  let variants = [''];
  for (const char of text) {
    const spellings = [...new Set([char.toLowerCase(), char.toUpperCase()])];
    variants = variants.flatMap((prefix) => spellings.map((s) => prefix + s));
  }
  const original = variants.indexOf(text);
  if (original > 0) variants.unshift(...variants.splice(original, 1));
  return variants;
}

/** `scan-*` in every letter case (16 patterns): the tag keys only the pipeline may write. */
export function scanTagKeyPatterns(): string[] {
  return caseVariants(SCAN_TAG_PREFIX).map((prefix) => `${prefix}*`);
}

/**
 * Denies, to every principal but the state machine, every way to leave a `scan-*` tag (any letter case) on
 * an object:
 * - an upload (PutObject, POST, CreateMultipartUpload) or tagging request that names such a key;
 * - replacing or deleting the tag set of an object that already carries a verdict (PutObjectTagging replaces
 *   the whole set, so without this a user could "untag" an Infected verdict);
 * - a server-side copy without an `x-amz-tagging` header: `s3:RequestObjectTagKeys` only reflects that
 *   header, so a copy with TaggingDirective COPY would carry the source's tags past the first statement, and
 *   S3 has no condition key for the tagging directive. Copies must therefore replace the tags explicitly
 *   (TaggingDirective REPLACE with at least one tag); UploadPartCopy, which cannot carry tags, is refused too;
 * - replication, whose writes carry the source's tags and have no tag condition key at all.
 */
export function tagProtectionStatements(bucketArn: string, tagWriterArns: readonly string[]): iam.PolicyStatement[] {
  return [
    deny('DenyScanTagWritesExceptPipeline', ['s3:PutObject', ...OBJECT_TAG_WRITES], bucketArn, tagWriterArns, {
      'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': scanTagKeyPatterns() },
    }),
    deny(
      'DenyVerdictTagRemovalExceptPipeline',
      [...OBJECT_TAG_WRITES, ...OBJECT_TAG_DELETES],
      bucketArn,
      tagWriterArns,
      { Null: { [`s3:ExistingObjectTag/${TAG_KEYS.result}`]: 'false' } },
    ),
    deny('DenyCopiesKeepingSourceTagsExceptPipeline', ['s3:PutObject'], bucketArn, tagWriterArns, {
      Null: { 's3:x-amz-copy-source': 'false', 's3:RequestObjectTagKeys': 'true' },
    }),
    deny('DenyReplicatedTagsExceptPipeline', ['s3:ReplicateTags'], bucketArn, tagWriterArns),
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
