import { GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AccessDeniedError, ObjectReadError } from '../../functions/commons/errors.js';
import { NULL_VERSION_ID } from '../../functions/commons/scan-execution.js';
import type { ScanJob, ScanResult } from '../../functions/commons/scan-job.js';
import { compareUploadOrder, formatUploadOrder, parseUploadOrder } from '../../functions/commons/upload-order.js';
import { TAG_KEYS, type Verdict } from '../../functions/commons/verdict.js';

export type Promotion = NonNullable<ScanResult['promotion']>;

/** What the worker saw of the key, in staging and in the destination, once its version was scanned Clean. */
export interface PromotionView {
  /** Staging's current version of the key: undefined when a delete marker (or nothing) is current. */
  readonly stagingCurrentVersionId: string | undefined;
  /** The destination's current object under the key, or undefined when there is none. */
  readonly destination: { readonly etag: string; readonly uploadedAt: string | undefined } | undefined;
}

/**
 * Whether a version scanned Clean may be published, and on what condition. The destination must only ever
 * hold a version that was the key's current one when it was promoted, and never go back to an older upload:
 * - staging's current version is another one (a newer upload, or a delete marker): `superseded`;
 * - the destination holds the promotion of a later upload (its `scan-uploaded` is later: upload-order.ts): `superseded`;
 * - otherwise promote, conditional on exactly what the destination holds now (nothing, or that ETag), so a
 *   promotion that lands in between makes S3 refuse the copy (412) instead of being overwritten.
 * Uploads are ordered by time (to the second, as S3 gives it) and then by S3's event sequencer; only two
 * uploads in one second without a sequencer (scans not started by an S3 event) cannot be told apart: the one
 * promoted last stays (see README, "Promotion order").
 */
export function decidePromotion(
  /** This upload's `scan-uploaded` value (formatUploadOrder). */
  uploadOrder: string | undefined,
  scannedVersionId: string,
  view: PromotionView,
  now: Date = new Date(),
): Promotion | undefined {
  // Without a real version id nothing can tell this upload from a later one under the same key: no
  // decision, so the state machine leaves it in staging (start-scan refuses such objects before a scan).
  if (scannedVersionId === NULL_VERSION_ID) return undefined;
  if (view.stagingCurrentVersionId !== scannedVersionId) {
    const reason = view.stagingCurrentVersionId === undefined ? 'deleted-in-staging' : 'newer-upload-in-staging';
    return { decision: 'superseded', reason };
  }
  if (view.destination === undefined) return { decision: 'promote-new' };
  const theirs = parseUploadOrder(view.destination.uploadedAt, now);
  const ours = parseUploadOrder(uploadOrder, now);
  if (theirs !== undefined && ours !== undefined && compareUploadOrder(theirs, ours) > 0) {
    return { decision: 'superseded', reason: 'newer-promotion-in-destination' };
  }
  return { decision: 'promote-over', destinationEtag: view.destination.etag };
}

/**
 * The promotion decision for a job whose verdict is `verdict`: only a Clean verdict with a destination gets
 * one. The worker and the state machine tests' scripted worker both call this, so they decide alike.
 */
export async function promotionFor(s3: S3Client, job: ScanJob, verdict: Verdict): Promise<Promotion | undefined> {
  if (verdict.verdict !== 'Clean' || job.destinationBucket === undefined) return undefined;
  const view = await readPromotionView(s3, job, job.destinationBucket);
  return decidePromotion(formatUploadOrder(job.object), job.object.versionId ?? NULL_VERSION_ID, view);
}

interface S3ErrorShape {
  readonly name?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function isMissing(error: unknown): boolean {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as S3ErrorShape;
  const status = shape.$metadata?.httpStatusCode;
  return status === 404 || shape.name === 'NotFound' || shape.name === 'NoSuchKey';
}

/** HeadObject of the key's current version; undefined when the key has none (missing or delete marker). */
async function headCurrent(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ versionId: string | undefined; etag: string } | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { versionId: head.VersionId, etag: head.ETag ?? '' };
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/**
 * Reads what {@link decidePromotion} needs: two HeadObjects and the destination copy's tags.
 * A failure is an ObjectReadError (retried by the state machine) or AccessDeniedError: never a guess.
 */
export async function readPromotionView(s3: S3Client, job: ScanJob, destinationBucket: string): Promise<PromotionView> {
  try {
    const staging = await headCurrent(s3, job.object.bucket, job.object.key);
    const destination = await headCurrent(s3, destinationBucket, job.object.key);
    let uploadedAt: string | undefined;
    if (destination !== undefined) {
      // The current copy's tags (s3:GetObjectTagging, no version needed): if another promotion lands between
      // these two reads, the copy's If-Match on the ETag read first fails, so a mismatched pair is harmless.
      const tagging = await s3.send(new GetObjectTaggingCommand({ Bucket: destinationBucket, Key: job.object.key }));
      uploadedAt = tagging.TagSet?.find((tag) => tag.Key === TAG_KEYS.uploaded)?.Value;
    }
    return {
      stagingCurrentVersionId: staging?.versionId,
      destination: destination === undefined ? undefined : { etag: destination.etag, uploadedAt },
    };
  } catch (error) {
    const shape = (typeof error === 'object' && error !== null ? error : {}) as S3ErrorShape;
    const where = `s3://${destinationBucket}/${job.object.key} (promotion check)`;
    if (shape.$metadata?.httpStatusCode === 403 || shape.name === 'AccessDenied') {
      throw new AccessDeniedError(`access denied reading ${where}`, { cause: error });
    }
    throw new ObjectReadError(`could not read ${where}: ${String(error)}`, { cause: error });
  }
}
