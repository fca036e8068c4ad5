import { GetObjectTaggingCommand, HeadObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { buildScanExecutionInput, executionNameFor, NULL_VERSION_ID } from '../commons/scan-execution.js';
import type { ObjectIdentity } from '../commons/scan-job.js';
import type { S3Tag } from '../commons/verdict.js';
import { exclusionReason, type StartScanConfig } from './config.js';
import type { AnnouncedObject } from './object-events.js';

/**
 * Where the identity came from:
 * - `head`: HeadObject of the announced version (the normal case);
 * - `event-sse-c`: HeadObject answered 400, which is S3's answer for an SSE-C object asked without its key;
 *   the event names the version, and the worker's own read answers Unscannable `unsupported-encryption`;
 * - `event-gone`: no key reading exists any more (404 on each); the execution still runs, so the worker's
 *   ObjectNotFoundError makes it report Unscannable `deleted`: every upload gets a result.
 */
export type PinnedBy = 'head' | 'event-sse-c' | 'event-gone';

export interface PinnedObject {
  readonly identity: ObjectIdentity;
  readonly pinnedBy: PinnedBy;
  /**
   * The object has no version id (unversioned bucket) or the `null` one (versioning suspended): later calls
   * could act on a newer upload, so the worker refuses it with Error `unversioned-bucket`.
   */
  readonly unversioned: boolean;
}

interface Started {
  readonly executionName: string;
  readonly identity: ObjectIdentity;
  readonly pinnedBy: PinnedBy;
  readonly unversioned: boolean;
  /** What the handler should log besides the outcome (e.g. owner tags that could not be read). */
  readonly warnings: readonly string[];
}

export type StartOutcome =
  | ({ readonly outcome: 'started' } & Started)
  | ({ readonly outcome: 'duplicate' } & Started)
  | { readonly outcome: 'skipped'; readonly reason: string; readonly bucket: string; readonly key: string };

export interface StartScanDeps {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly config: StartScanConfig;
}

/**
 * The event named an object that can neither be read nor named: HeadObject could not pin it and the
 * event carries no ETag. Nothing is guessed; the record fails and ends in the scan-requests DLQ (alarmed).
 */
export class UnidentifiableObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnidentifiableObjectError';
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return (
    statusOf(error) === 404 || error.name === 'NotFound' || error.name === 'NoSuchKey' || error.name === 'NoSuchVersion'
  );
}

function isVersioned(versionId: string | undefined): boolean {
  return versionId !== undefined && versionId !== NULL_VERSION_ID;
}

/** HeadObject's ETag is quoted, the events' is not: one form, so both paths give one execution name. */
function quotedEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
}

function identityFromEvent(announced: AnnouncedObject, key: string, why: string): ObjectIdentity {
  if (announced.etag === undefined) {
    throw new UnidentifiableObjectError(
      `s3://${announced.bucket}/${key}: ${why}, and the event carries no ETag to name the upload by`,
    );
  }
  return {
    bucket: announced.bucket,
    key,
    ...(announced.versionId !== undefined ? { versionId: announced.versionId } : {}),
    etag: quotedEtag(announced.etag),
    // S3's events always carry the size; should one not, 0 makes the worker ask S3 itself (which answers
    // 400 or 404 here), and keeps the notification's `size` present.
    size: announced.size ?? 0,
    ...(announced.eventTime !== undefined ? { uploadedAt: announced.eventTime } : {}),
    ...(announced.sequencer !== undefined ? { sequencer: announced.sequencer } : {}),
  };
}

/**
 * Pins the object the event announced. HeadObject on each key reading (with the event's version id when
 * there is one), most likely first:
 * - 200 pins that reading: the exact version and ETag every later call names;
 * - 400 is an SSE-C object (the key exists; HeadObject needs the customer key): a later reading that
 *   answers 200 still wins, else the identity is built from the event;
 * - 404: this reading does not exist; when no reading exists the object is gone, identity from the event;
 * - 403 is never "gone" (without s3:ListBucket S3 answers 403 for a missing key, but also for a policy that
 *   denies the read): the other readings are still tried, and if none answers, the 403 fails the record;
 * - anything else (5xx, throttling) fails the record at once, to be retried.
 */
export async function pinObject(s3: S3Client, announced: AnnouncedObject): Promise<PinnedObject> {
  let customerKeyReading: string | undefined;
  let denied: unknown;
  for (const key of announced.keyCandidates) {
    try {
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: announced.bucket, Key: key, VersionId: announced.versionId }),
      );
      if (!head.ETag) throw new Error(`HeadObject of s3://${announced.bucket}/${key} returned no ETag`);
      const uploadedAt = head.LastModified?.toISOString() ?? announced.eventTime;
      return {
        identity: {
          bucket: announced.bucket,
          key,
          ...(head.VersionId ? { versionId: head.VersionId } : {}),
          etag: head.ETag,
          size: head.ContentLength ?? 0,
          ...(uploadedAt !== undefined ? { uploadedAt } : {}),
          // The event's sequencer describes the event's version: only when HeadObject pinned exactly that one.
          ...(announced.sequencer !== undefined &&
          announced.versionId !== undefined &&
          head.VersionId === announced.versionId
            ? { sequencer: announced.sequencer }
            : {}),
        },
        pinnedBy: 'head',
        unversioned: !isVersioned(head.VersionId),
      };
    } catch (error) {
      if (isNotFound(error)) continue;
      if (statusOf(error) === 400) {
        customerKeyReading ??= key;
        continue;
      }
      if (statusOf(error) === 403) {
        denied ??= error;
        continue;
      }
      throw error;
    }
  }
  const unversioned = !isVersioned(announced.versionId);
  if (customerKeyReading !== undefined) {
    const why = 'HeadObject answered 400 (SSE-C: the object needs its customer key)';
    return { identity: identityFromEvent(announced, customerKeyReading, why), pinnedBy: 'event-sse-c', unversioned };
  }
  if (denied !== undefined) throw denied;
  const key = announced.keyCandidates[0];
  if (key === undefined) throw new UnidentifiableObjectError(`the event for s3://${announced.bucket} names no key`);
  const why = `no key reading exists any more (HeadObject 404 on ${announced.keyCandidates.join(', ')})`;
  return { identity: identityFromEvent(announced, key, why), pinnedBy: 'event-gone', unversioned };
}

function toTags(tagSet: readonly { Key?: string; Value?: string }[] | undefined): S3Tag[] {
  return (tagSet ?? []).map((tag) => ({ Key: tag.Key ?? '', Value: tag.Value ?? '' }));
}

/**
 * The owner's tags, which TagVerdict writes back beside the verdict. A deleted object has none to keep. For
 * an SSE-C object GetObjectTagging works without the key on AWS; should S3 refuse it anyway (4xx), the
 * object is still scanned (Unscannable), without owner tags, and the handler logs the warning.
 */
async function readTags(
  s3: S3Client,
  pinned: PinnedObject,
): Promise<{ readonly tags: S3Tag[]; readonly warnings: string[] }> {
  if (pinned.pinnedBy === 'event-gone') return { tags: [], warnings: [] };
  const { identity } = pinned;
  const read = () =>
    s3.send(new GetObjectTaggingCommand({ Bucket: identity.bucket, Key: identity.key, VersionId: identity.versionId }));
  if (pinned.pinnedBy === 'head') return { tags: toTags((await read()).TagSet), warnings: [] };
  try {
    return { tags: toTags((await read()).TagSet), warnings: [] };
  } catch (error) {
    const status = statusOf(error);
    if (status === undefined || status < 400 || status >= 500) throw error;
    return {
      tags: [],
      warnings: [`GetObjectTagging answered ${status}: the verdict is written without the owner's tags`],
    };
  }
}

/**
 * Starts one scan-object execution for one announced object — also for an SSE-C object and for one deleted
 * before its event was handled, so each gets a result. A duplicate event (S3 delivers at least once) finds
 * the deterministic execution name taken: ExecutionAlreadyExists means the scan is already under way.
 */
export async function startScan(announced: AnnouncedObject, deps: StartScanDeps): Promise<StartOutcome> {
  const { s3, sfn, config } = deps;
  // Cheap exclusions first, before any S3 call: every candidate must be excluded to skip.
  const reasons = announced.keyCandidates.map((key) => exclusionReason({ bucket: announced.bucket, key }, config));
  const firstReason = reasons[0];
  if (firstReason !== undefined && reasons.every((reason) => reason !== undefined)) {
    return { outcome: 'skipped', reason: firstReason, bucket: announced.bucket, key: announced.keyCandidates[0] ?? '' };
  }

  const pinned = await pinObject(s3, announced);
  const { identity } = pinned;
  const excluded = exclusionReason(identity, config);
  if (excluded !== undefined)
    return { outcome: 'skipped', reason: excluded, bucket: identity.bucket, key: identity.key };

  const { tags, warnings } = await readTags(s3, pinned);
  const input = buildScanExecutionInput(identity, tags, {
    timing: config.timing,
    copySourceEncoding: config.copySourceEncoding,
  });
  const executionName = executionNameFor(identity);
  const started = { executionName, identity, pinnedBy: pinned.pinnedBy, unversioned: pinned.unversioned, warnings };
  try {
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn,
        name: executionName,
        input: JSON.stringify(input),
      }),
    );
    return { outcome: 'started', ...started };
  } catch (error) {
    if (error instanceof ExecutionAlreadyExists) return { outcome: 'duplicate', ...started };
    throw error;
  }
}
