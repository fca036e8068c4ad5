import { createHash } from 'node:crypto';
import { CLAMD_LIMITS } from './clamd-limits.js';
import type { ObjectIdentity } from './scan-job.js';
import { planOwnerTags, type S3Tag } from './verdict.js';

/**
 * How the x-amz-copy-source value is written. S3 requires it URL-encoded (`url`, the default and what AWS
 * Step Functions passes through untouched). The local engine (moto) calls S3 through botocore, which encodes
 * the value itself, so the local runtime uses `raw` to avoid double encoding.
 */
export const COPY_SOURCE_ENCODINGS = ['url', 'raw'] as const;
export type CopySourceEncoding = (typeof COPY_SOURCE_ENCODINGS)[number];

export interface ScanTimingPolicy {
  /**
   * How long a job may wait in scan-jobs for a worker to take it: a scale-out from zero workers (scaling
   * alarm, Fargate task start, image pull, signature load: minutes) or a burst larger than the pool. The
   * ScanObject task has no heartbeat timeout, because its clocks run from when the job is QUEUED (measured on
   * AWS, issue #8, and on the local engine): a heartbeat would turn waiting for a worker into an Error. Its
   * TimeoutSeconds covers this wait plus the scan, and a lost worker is noticed by SQS instead (see
   * {@link WORKER_LOSS_SECONDS}).
   */
  readonly queueWaitSeconds: number;
  /**
   * Time for the scan of any object, however small, once a worker has it: setup, one lost worker, and clamd's
   * MaxScanTime. At least {@link MIN_BASE_TIMEOUT_SECONDS} (see {@link longestScanSeconds}).
   */
  readonly baseTimeoutSeconds: number;
  /** The slowest transfer rate we still accept; bigger objects get proportionally longer. */
  readonly minBytesPerSecond: number;
  readonly maxTimeoutSeconds: number;
}

/**
 * Time a scan job spends around clamd's scan while everything works, once a worker has taken it: HeadObject,
 * the token check, connecting to clamd, and after the scan clamd's reply, the promotion check and
 * SendTaskSuccess.
 */
export const SCAN_SETUP_SECONDS = 120;

/**
 * The longest worker heartbeat interval (HEARTBEAT_INTERVAL_SECONDS) the timing allows. While it holds a job
 * the worker extends its message's visibility to three intervals at every heartbeat, so a worker that dies
 * leaves its job invisible for at most three intervals.
 */
export const MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS = 60;

/**
 * One lost worker (crash, OOM kill, task stopped past its grace): its job becomes visible again within three
 * heartbeat intervals and the next worker continues it with the same task token, which stays valid (measured
 * on the local engine; AWS tokens are valid until the task closes). Whatever the worker was scanning is
 * scanned again from the start; ordinary objects take seconds, which the MaxScanTime allowance covers.
 */
export const WORKER_LOSS_SECONDS = 3 * MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS;

/** Everything outside clamd's scan once a worker has the job: setup and one lost worker. */
export const SCAN_OVERHEAD_SECONDS = SCAN_SETUP_SECONDS + WORKER_LOSS_SECONDS;

/**
 * How many workers may take one job without finishing it. ApproximateReceiveCount counts them: the worker
 * that receives a job for the (MAX_JOB_DELIVERIES + 1)th time fails its task with WorkerLostError (→ Error)
 * before reading anything, so a job that takes its worker down every time ends within a few visibility
 * timeouts instead of at the task timeout, and takes no more workers down.
 */
export const MAX_JOB_DELIVERIES = 3;

/**
 * scan-jobs' redrive maxReceiveCount: one delivery above the worker's limit to fail the task, one more in case
 * that SendTaskFailure itself failed. The dead-letter queue then only ever holds jobs whose token could not
 * be completed (no token at all, or Step Functions unreachable): a lost worker never sends a job there.
 */
export const SCAN_JOBS_MAX_RECEIVE_COUNT = MAX_JOB_DELIVERIES + 2;

/**
 * The longest a scan of `size` bytes may take once a worker has it, without anything being wrong: the
 * overhead, the object streamed to clamd at the slowest accepted rate, then clamd's MaxScanTime (its clock
 * starts once the stream is in). The ScanObject task timeout, less the queue wait, must never be shorter: a
 * pathological object would then time out and end `Error` (while clamd keeps scanning the abandoned attempt),
 * instead of clamd answering Heuristics.Limits.Exceeded.MaxScanTime once (→ Unscannable `limits-exceeded`).
 */
export function longestScanSeconds(size: number, policy: Pick<ScanTimingPolicy, 'minBytesPerSecond'>): number {
  return SCAN_OVERHEAD_SECONDS + Math.ceil(size / policy.minBytesPerSecond) + CLAMD_LIMITS.maxScanTimeMs / 1000;
}

/**
 * The smallest base timeout that keeps {@link longestScanSeconds} for every size: the timeout and the
 * longest scan both grow by size ÷ minBytesPerSecond, so the base must cover the rest (overhead + MaxScanTime).
 */
export const MIN_BASE_TIMEOUT_SECONDS = longestScanSeconds(0, { minBytesPerSecond: 1 });

/**
 * The default queue wait: twice the default ScanJobsOldestAge alarm (15 min), so the alarm fires while every
 * waiting job can still get its verdict. A cold start from zero workers takes a few minutes of it.
 */
export const DEFAULT_QUEUE_WAIT_SECONDS = 30 * 60;

export const DEFAULT_SCAN_TIMING: ScanTimingPolicy = {
  queueWaitSeconds: DEFAULT_QUEUE_WAIT_SECONDS,
  baseTimeoutSeconds: MIN_BASE_TIMEOUT_SECONDS,
  minBytesPerSecond: 2 * 1024 * 1024,
  maxTimeoutSeconds: 3 * 60 * 60,
};

/**
 * Where `policy` lets the ScanObject task time out before a job that waited the whole queue wait is scanned
 * and clamd gives up on an object of up to `maxObjectBytes` (omit it when unknown: the base and the cap are
 * still checked). One sentence per broken bound, naming the setting as the caller calls it (a prop or an
 * environment variable); empty when the policy is sound.
 */
export function scanTimingProblems(
  policy: ScanTimingPolicy,
  maxObjectBytes: number | undefined,
  names: { readonly queueWait: string; readonly base: string; readonly max: string; readonly rate: string },
): string[] {
  const problems: string[] = [];
  const maxScanSeconds = CLAMD_LIMITS.maxScanTimeMs / 1000;
  const why = `so clamd reports Heuristics.Limits.Exceeded.MaxScanTime (Unscannable) before the ScanObject task times out`;
  const overhead = `${SCAN_SETUP_SECONDS} s for setup and ${WORKER_LOSS_SECONDS} s for one lost worker`;
  if (policy.baseTimeoutSeconds < MIN_BASE_TIMEOUT_SECONDS) {
    problems.push(
      `${names.base} (${policy.baseTimeoutSeconds}) must be at least ${MIN_BASE_TIMEOUT_SECONDS}: clamd's MaxScanTime (${maxScanSeconds} s, scanner-image/clamd.conf) plus ${overhead}, ${why}`,
    );
  }
  const smallest = policy.queueWaitSeconds + policy.baseTimeoutSeconds;
  if (policy.maxTimeoutSeconds < smallest) {
    problems.push(
      `${names.max} (${policy.maxTimeoutSeconds}) must be at least ${names.queueWait} + ${names.base} (${smallest}): the cap would otherwise cut the queue wait or the scan of every object`,
    );
  }
  if (maxObjectBytes !== undefined) {
    const needed = policy.queueWaitSeconds + longestScanSeconds(maxObjectBytes, policy);
    if (policy.maxTimeoutSeconds < needed) {
      problems.push(
        `${names.max} (${policy.maxTimeoutSeconds}) must be at least ${needed} for objects of up to ${maxObjectBytes} bytes: ${names.queueWait} (${policy.queueWaitSeconds} s) in the queue, ${overhead}, streaming at ${names.rate} (${policy.minBytesPerSecond} bytes/s), then clamd's MaxScanTime (${maxScanSeconds} s), ${why}`,
      );
    }
  }
  return problems;
}

/** The execution input of scan-object. The state machine adds `scan`, `failure` and updates `placement`. */
export interface ScanExecutionInput {
  readonly object: ObjectIdentity & {
    readonly versionId: string;
    /** The owner's tags that stay (see planOwnerTags); TagVerdict writes these plus the verdict's. */
    readonly tags: S3Tag[];
    /** Owner tags beyond the eight kept; reported in the notification. */
    readonly droppedTags: S3Tag[];
    /** How many verdict tags fit beside `tags` (2..5). */
    readonly verdictTagRoom: number;
    /**
     * x-amz-copy-source of the exact scanned version. PromoteObject and QuarantineObject copy exactly those
     * bytes, whatever happened to the key since: the copy never rests on an ETag comparison.
     */
    readonly copySource: string;
  };
  /** ScanObject's TimeoutSecondsPath: queue wait + scan ({@link scanTimeoutSeconds}). There is no heartbeat timeout. */
  readonly limits: { readonly timeoutSeconds: number };
  /** Where the object is now. PromoteObject/QuarantineObject replace it when they move the object. */
  readonly placement: { readonly area: 'staging' };
  /** Set by a Catch; null until something fails so NotifyResult can always include it. */
  readonly failure: null;
}

/** S3 returns no version id for unversioned buckets; "null" addresses that object's null version. */
export const NULL_VERSION_ID = 'null';

/** The ScanObject task timeout for an object of `size` bytes: the queue wait, the base, and size ÷ rate, capped. */
export function scanTimeoutSeconds(size: number | undefined, policy: ScanTimingPolicy): number {
  const forSize = Math.ceil((size ?? 0) / policy.minBytesPerSecond);
  return Math.min(policy.queueWaitSeconds + policy.baseTimeoutSeconds + forSize, policy.maxTimeoutSeconds);
}

/** The x-amz-copy-source value: one version when `versionId` is given, else the key's current version. */
export function copySourceFor(
  object: { bucket: string; key: string; versionId?: string },
  encoding: CopySourceEncoding,
): string {
  const key = encoding === 'url' ? object.key.split('/').map(encodeURIComponent).join('/') : object.key;
  const source = `${object.bucket}/${key}`;
  return object.versionId === undefined ? source : `${source}?versionId=${encodeURIComponent(object.versionId)}`;
}

export function buildScanExecutionInput(
  identity: ObjectIdentity,
  existingTags: readonly S3Tag[],
  options: { timing: ScanTimingPolicy; copySourceEncoding: CopySourceEncoding },
): ScanExecutionInput {
  const versionId = identity.versionId ?? NULL_VERSION_ID;
  const { ownerTags, droppedOwnerTags, verdictTagRoom } = planOwnerTags(existingTags);
  return {
    object: {
      ...identity,
      versionId,
      tags: ownerTags,
      droppedTags: droppedOwnerTags,
      verdictTagRoom,
      copySource: copySourceFor({ ...identity, versionId }, options.copySourceEncoding),
    },
    limits: { timeoutSeconds: scanTimeoutSeconds(identity.size, options.timing) },
    placement: { area: 'staging' },
    failure: null,
  };
}

const EXECUTION_NAME_MAX = 80;
const HASH_CHARS = 32;

/**
 * A deterministic execution name for one object version, so a duplicate S3 event finds
 * ExecutionAlreadyExists instead of scanning twice. A readable slug of the key's last segment helps an
 * operator find the execution in the console; the hash of the full identity makes it unique.
 * Only `[A-Za-z0-9_-]`: legal for executions and safe for CloudWatch Logs.
 */
export function executionNameFor(identity: Pick<ObjectIdentity, 'bucket' | 'key' | 'versionId' | 'etag'>): string {
  const hash = createHash('sha256')
    .update([identity.bucket, identity.key, identity.versionId ?? '', identity.etag].join('\u0000'))
    .digest('hex')
    .slice(0, HASH_CHARS);
  const lastSegment = identity.key.split('/').filter(Boolean).pop() ?? '';
  const slug = lastSegment
    .normalize('NFKD')
    .replace(/\p{M}/gu, '') // é → e rather than e-
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, EXECUTION_NAME_MAX - HASH_CHARS - 1);
  return slug ? `${slug}-${hash}` : hash;
}
