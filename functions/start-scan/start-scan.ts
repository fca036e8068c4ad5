import { GetObjectTaggingCommand, HeadObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { buildScanExecutionInput, executionNameFor } from '../commons/scan-execution.js';
import type { ObjectIdentity } from '../commons/scan-job.js';
import type { S3Tag } from '../commons/verdict.js';
import { exclusionReason, type StartScanConfig } from './config.js';
import type { AnnouncedObject } from './object-events.js';

export type StartOutcome =
  | { readonly outcome: 'started'; readonly executionName: string; readonly identity: ObjectIdentity }
  | { readonly outcome: 'duplicate'; readonly executionName: string; readonly identity: ObjectIdentity }
  | { readonly outcome: 'skipped'; readonly reason: string; readonly bucket: string; readonly key: string }
  | { readonly outcome: 'gone'; readonly bucket: string; readonly keyCandidates: readonly string[] };

export interface StartScanDeps {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly config: StartScanConfig;
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return (
    error.$metadata.httpStatusCode === 404 ||
    error.name === 'NotFound' ||
    error.name === 'NoSuchKey' ||
    error.name === 'NoSuchVersion'
  );
}

/**
 * Pins the object the event announced: HeadObject on each key reading (with the event's version id when
 * there is one) returns the exact version and ETag every later call will name. Undefined when no reading
 * exists any more — the object was deleted before we got to it.
 */
export async function pinObject(s3: S3Client, announced: AnnouncedObject): Promise<ObjectIdentity | undefined> {
  for (const key of announced.keyCandidates) {
    try {
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: announced.bucket, Key: key, VersionId: announced.versionId }),
      );
      if (!head.ETag) throw new Error(`HeadObject of s3://${announced.bucket}/${key} returned no ETag`);
      return {
        bucket: announced.bucket,
        key,
        ...(head.VersionId ? { versionId: head.VersionId } : {}),
        etag: head.ETag,
        size: head.ContentLength ?? 0,
        ...(head.LastModified ? { uploadedAt: head.LastModified.toISOString() } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
  }
  return undefined;
}

async function readTags(s3: S3Client, identity: ObjectIdentity): Promise<S3Tag[]> {
  const tagging = await s3.send(
    new GetObjectTaggingCommand({ Bucket: identity.bucket, Key: identity.key, VersionId: identity.versionId }),
  );
  return (tagging.TagSet ?? []).map((tag) => ({ Key: tag.Key ?? '', Value: tag.Value ?? '' }));
}

/**
 * Starts one scan-object execution for one announced object. A duplicate event (S3 delivers at least once)
 * finds the deterministic execution name taken: ExecutionAlreadyExists means the scan is already under way.
 */
export async function startScan(announced: AnnouncedObject, deps: StartScanDeps): Promise<StartOutcome> {
  const { s3, sfn, config } = deps;
  // Cheap exclusions first, before any S3 call: every candidate must be excluded to skip.
  const reasons = announced.keyCandidates.map((key) => exclusionReason({ bucket: announced.bucket, key }, config));
  const firstReason = reasons[0];
  if (firstReason !== undefined && reasons.every((reason) => reason !== undefined)) {
    return { outcome: 'skipped', reason: firstReason, bucket: announced.bucket, key: announced.keyCandidates[0] ?? '' };
  }

  const identity = await pinObject(s3, announced);
  if (!identity) return { outcome: 'gone', bucket: announced.bucket, keyCandidates: announced.keyCandidates };
  const excluded = exclusionReason(identity, config);
  if (excluded !== undefined)
    return { outcome: 'skipped', reason: excluded, bucket: identity.bucket, key: identity.key };

  const input = buildScanExecutionInput(identity, await readTags(s3, identity), {
    timing: config.timing,
    copySourceEncoding: config.copySourceEncoding,
  });
  const executionName = executionNameFor(identity);
  try {
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn,
        name: executionName,
        input: JSON.stringify(input),
      }),
    );
    return { outcome: 'started', executionName, identity };
  } catch (error) {
    if (error instanceof ExecutionAlreadyExists) return { outcome: 'duplicate', executionName, identity };
    throw error;
  }
}
