import { Annotations, CfnOutput, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { SCAN_TAG_PREFIX, TAG_KEYS } from '../../functions/commons/verdict.js';

/**
 * The bucket-policy statements of the pipeline buckets, one pure function per bucket role, used both for the
 * buckets the stack creates and for the `ImportedBucketPolicy<n>` outputs of imported ones, so what is
 * printed is exactly what is applied. Every statement is a Deny with an `aws:PrincipalArn` exception: an
 * identity policy granting s3:* (an account administrator's) cannot override it; only a bucket-policy
 * change lifts it.
 */

export type BucketRole = 'staging' | 'destination' | 'quarantine';

export interface PipelineRoleArns {
  /** The scan-object state machine's role: writes the verdict tags and every object the pipeline places. */
  readonly stateMachine: string;
  /** start-scan's role: HeadObject and GetObjectTagging on new objects. */
  readonly startScan: string;
  /** The worker task role: streams objects into clamd. */
  readonly worker: string;
}

export interface BucketPolicyOptions {
  /** The stack creates the bucket: the policy is the stack's alone, so reads can be denied outright. */
  readonly created: boolean;
  readonly pipeline: PipelineRoleArns;
  /** Imported staging buckets only: deny reads of objects not tagged `scan-result=Clean`. */
  readonly blockUnscannedReads: boolean;
  readonly stagingReaderRoleArns?: readonly string[];
  readonly quarantineReaderRoleArn?: string;
}

const OBJECT_TAG_WRITES = ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'];
const OBJECT_TAG_DELETES = ['s3:DeleteObjectTagging', 's3:DeleteObjectVersionTagging'];
const OBJECT_READS = ['s3:GetObject', 's3:GetObjectVersion'];
// A replication rule's role reads with this action, not GetObject, so "nobody else reads" must name it.
const REPLICATION_READ = 's3:GetObjectVersionForReplication';

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
 * - any server-side copy (CopyObject, UploadPartCopy): `s3:RequestObjectTagKeys` only reflects an
 *   `x-amz-tagging` header, a copy with TaggingDirective COPY carries the source's tags past the first
 *   statement, and S3 has no condition key for the tagging directive — nor documents that a COPY directive
 *   with a harmless `x-amz-tagging` header is refused. Uploaders upload; only the pipeline copies;
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
    deny('DenyServerSideCopiesExceptPipeline', ['s3:PutObject'], bucketArn, tagWriterArns, {
      Null: { 's3:x-amz-copy-source': 'false' },
    }),
    deny('DenyReplicatedTagsExceptPipeline', ['s3:ReplicateTags'], bucketArn, tagWriterArns),
  ];
}

/**
 * Imported staging buckets with `blockUnscannedReads`: only objects tagged `scan-result=Clean` may be read,
 * except by the pipeline roles that must read an object to scan and move it. A missing tag counts as "not
 * Clean".
 */
export function blockUnscannedReadsStatement(bucketArn: string, readerArns: readonly string[]): iam.PolicyStatement {
  return deny('DenyReadsOfObjectsNotScannedClean', OBJECT_READS, bucketArn, readerArns, {
    StringNotEquals: { [`s3:ExistingObjectTag/${TAG_KEYS.result}`]: 'Clean' },
  });
}

/**
 * A staging bucket the stack creates only ever holds objects not yet scanned, or left there as Unscannable or
 * Error (Clean and Infected ones are moved out), so nobody but the pipeline and the named investigators reads
 * them. Tag reads stay open: uploaders may poll their object's `scan-result`.
 */
export function stagingReadStatement(bucketArn: string, readerArns: readonly string[]): iam.PolicyStatement {
  return deny('DenyStagingReadsExceptPipeline', [...OBJECT_READS, REPLICATION_READ], bucketArn, readerArns);
}

/** Quarantined objects are readable by the pipeline and the named security role only. */
export function quarantineReadStatement(bucketArn: string, allowedReaderArns: readonly string[]): iam.PolicyStatement {
  return deny(
    'DenyQuarantineReadsExceptPipelineAndSecurity',
    [...OBJECT_READS, 's3:GetObjectTagging', 's3:GetObjectVersionTagging', REPLICATION_READ],
    bucketArn,
    allowedReaderArns,
  );
}

/**
 * Only the state machine places objects in destination and quarantine, so every object there came from a
 * scan. PutObject covers CopyObject and multipart uploads; deletions stay with the bucket's owners.
 */
export function placementWriteStatement(bucketArn: string, writerArns: readonly string[]): iam.PolicyStatement {
  return deny(
    'DenyObjectWritesExceptPipeline',
    ['s3:PutObject', ...OBJECT_TAG_WRITES, ...OBJECT_TAG_DELETES, 's3:ReplicateObject', 's3:ReplicateTags'],
    bucketArn,
    writerArns,
  );
}

/** Every statement the policy of a pipeline bucket needs, for a bucket in `role`. */
export function bucketPolicyStatements(
  role: BucketRole,
  bucketArn: string,
  options: BucketPolicyOptions,
): iam.PolicyStatement[] {
  const { pipeline } = options;
  const pipelineOnly = [pipeline.stateMachine];
  const statements = tagProtectionStatements(bucketArn, pipelineOnly);
  switch (role) {
    case 'staging': {
      const readers = [
        pipeline.stateMachine,
        pipeline.startScan,
        pipeline.worker,
        ...(options.stagingReaderRoleArns ?? []),
      ];
      if (options.created) statements.push(stagingReadStatement(bucketArn, readers));
      else if (options.blockUnscannedReads) statements.push(blockUnscannedReadsStatement(bucketArn, readers));
      return statements;
    }
    case 'destination':
      return [...statements, placementWriteStatement(bucketArn, pipelineOnly)];
    case 'quarantine': {
      const readers = [
        pipeline.stateMachine,
        ...(options.quarantineReaderRoleArn ? [options.quarantineReaderRoleArn] : []),
      ];
      return [
        ...statements,
        placementWriteStatement(bucketArn, pipelineOnly),
        quarantineReadStatement(bucketArn, readers),
      ];
    }
  }
}

/**
 * s3:ListBucket on the bucket itself: without it S3 answers 403 instead of 404 for a key that does not exist,
 * and a deleted object would look like a permissions problem.
 */
export function listBucketStatement(sid: string, bucketArns: readonly string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, actions: ['s3:ListBucket'], resources: [...bucketArns] });
}

export interface PipelineBuckets {
  readonly protectedBuckets: readonly s3.IBucket[];
  readonly destination: s3.IBucket;
  readonly quarantine: s3.IBucket;
}

/**
 * Adds the statements to the policies of the buckets the stack creates. CloudFormation can only replace a
 * bucket policy, which would drop an imported bucket owner's statements, so for imported buckets they are
 * published instead, one `ImportedBucketPolicy<n>` output per bucket (output values are limited to 4 KB).
 */
export function applyBucketPolicies(
  scope: Construct,
  buckets: PipelineBuckets,
  options: Omit<BucketPolicyOptions, 'created'>,
): void {
  const byRole: Array<[BucketRole, s3.IBucket]> = [
    ...buckets.protectedBuckets.map((b): [BucketRole, s3.IBucket] => ['staging', b]),
    ['destination', buckets.destination],
    ['quarantine', buckets.quarantine],
  ];
  const imported: Array<[BucketRole, s3.IBucket]> = [];
  for (const [role, bucket] of byRole) {
    if (bucket instanceof s3.Bucket) {
      for (const statement of bucketPolicyStatements(role, bucket.bucketArn, { ...options, created: true }))
        bucket.addToResourcePolicy(statement);
    } else {
      imported.push([role, bucket]);
    }
  }
  imported.forEach(([role, bucket], i) => {
    const statements = bucketPolicyStatements(role, bucket.bucketArn, { ...options, created: false });
    new CfnOutput(scope, `ImportedBucketPolicy${i}`, {
      description: `Merge these statements into the policy of imported bucket ${bucket.bucketName} (${role}): without them the pipeline's guarantees do not hold for it`,
      value: Stack.of(scope).toJsonString(statements.map((s) => s.toStatementJson())),
    });
  });
  if (imported.length > 0) {
    Annotations.of(scope).addWarningV2(
      'scanflow:importedBucketPolicy',
      `Imported buckets keep their own policy: merge the ImportedBucketPolicy<n> outputs into them (${imported.length} bucket(s)).`,
    );
  }
}
