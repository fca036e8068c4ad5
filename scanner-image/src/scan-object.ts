import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  AccessDeniedError,
  ObjectNotFoundError,
  ObjectReadError,
  ScannerUnavailableError,
} from '../../functions/commons/errors.js';
import type { ObjectIdentity, ScanJob } from '../../functions/commons/scan-job.js';
import type { Verdict } from '../../functions/commons/verdict.js';
import { type ClamdScanner, ClamdUnavailableError } from './clamd-client.js';
import { mapClamdReply } from './clamd-reply.js';

export interface ScanObjectDeps {
  readonly s3: S3Client;
  readonly scanner: ClamdScanner;
}

export interface ScanObjectOptions {
  /** The worker's limit; a job's `settings.maxSizeBytes` can only lower it. */
  readonly maxObjectBytes: number;
  /** Tries (download + scan) when clamd is unreachable or answers ERROR, and when a download breaks off. */
  readonly attempts: number;
  /** First backoff; doubles each try. */
  readonly backoffMs: number;
  readonly signal?: AbortSignal;
  /**
   * Awaited before each download+scan try: the worker's clamd health gate holds a try while clamd does not
   * answer PING (instead of spending the tries on a dead clamd) and throws ScannerUnavailableError when it
   * gives up waiting. What it throws ends the scan.
   */
  readonly scannerReady?: () => Promise<void>;
}

export interface ScanOutcome {
  readonly verdict: Verdict;
  /** Bytes clamd received (0 when the verdict came from HeadObject alone). */
  readonly bytesScanned: number;
  readonly objectSize: number;
}

/** A download that ended before ContentLength bytes; clamd saw a prefix only, so the reply means nothing. */
class IncompleteDownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteDownloadError';
  }
}

/**
 * Scans one exact object version. The size decides too-large without downloading; GetObject (exact
 * version, conditional on the ETag) is streamed straight into clamd. Throws only the contract errors
 * (ObjectNotFoundError, AccessDeniedError, ScannerUnavailableError, ObjectReadError) or an abort.
 */
export async function scanObject(
  job: Pick<ScanJob, 'object' | 'settings'>,
  deps: ScanObjectDeps,
  options: ScanObjectOptions,
): Promise<ScanOutcome> {
  const { object } = job;
  const limit = Math.min(options.maxObjectBytes, job.settings?.maxSizeBytes ?? Number.POSITIVE_INFINITY);

  // start-scan pinned the size with its own HeadObject of this exact version/ETag; asking again would cost
  // a request per object for nothing. Without a size (or for an empty object, where no download will
  // confirm the ETag) HeadObject decides.
  let size = object.size;
  if (size === undefined || size === 0) {
    const head = await s3Call(object, () =>
      deps.s3.send(
        new HeadObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          VersionId: object.versionId,
          IfMatch: object.etag,
        }),
        { abortSignal: options.signal },
      ),
    );
    if (head === 'sse-c' || head.SSECustomerAlgorithm) {
      return { verdict: unscannable('unsupported-encryption'), bytesScanned: 0, objectSize: size ?? 0 };
    }
    if (head.ContentLength === undefined) throw new ScannerUnavailableError('HeadObject returned no ContentLength');
    size = head.ContentLength;
  }
  if (size > limit) return { verdict: unscannable('too-large'), bytesScanned: 0, objectSize: size };
  // clamd answers OK for an empty stream (measured); the passthrough never opens a connection without data.
  if (size === 0) return { verdict: { verdict: 'Clean' }, bytesScanned: 0, objectSize: 0 };

  let lastProblem = '';
  // Which side failed last decides the error name: clamd (ScannerUnavailableError) or S3 (ObjectReadError).
  let lastFailedSide: 'scanner' | 'read' = 'scanner';
  for (let attempt = 1; attempt <= options.attempts; attempt += 1) {
    if (attempt > 1) await sleep(options.backoffMs * 2 ** (attempt - 2), options.signal);
    await options.scannerReady?.();
    try {
      const scanned = await downloadAndScan(object, size, limit, deps, options.signal);
      if (scanned.kind === 'verdict') return { verdict: scanned.verdict, bytesScanned: 0, objectSize: scanned.size };
      const outcome = mapClamdReply(scanned.reply);
      if (outcome.kind === 'verdict') {
        // A verdict from clamd about fewer bytes than the object has is only trustworthy if it is a finding.
        if (scanned.bytes < scanned.size && outcome.verdict.verdict === 'Clean') {
          throw new IncompleteDownloadError(`clamd saw ${scanned.bytes} of ${scanned.size} bytes`);
        }
        return { verdict: outcome.verdict, bytesScanned: scanned.bytes, objectSize: scanned.size };
      }
      lastProblem = outcome.detail;
      lastFailedSide = 'scanner';
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (error instanceof ObjectNotFoundError || error instanceof AccessDeniedError) throw error;
      if (!(error instanceof ClamdUnavailableError || error instanceof IncompleteDownloadError || isTransient(error))) {
        throw new ScannerUnavailableError(`scan failed: ${message(error)}`, { cause: error });
      }
      lastProblem = message(error);
      lastFailedSide = error instanceof ClamdUnavailableError ? 'scanner' : 'read';
    }
  }
  const summary = `no verdict after ${options.attempts} attempts: ${lastProblem}`;
  throw lastFailedSide === 'read' ? new ObjectReadError(summary) : new ScannerUnavailableError(summary);
}

type Scanned =
  | { readonly kind: 'reply'; readonly reply: string; readonly bytes: number; readonly size: number }
  | { readonly kind: 'verdict'; readonly verdict: Verdict; readonly size: number };

async function downloadAndScan(
  object: ObjectIdentity,
  expectedSize: number,
  limit: number,
  deps: ScanObjectDeps,
  signal?: AbortSignal,
): Promise<Scanned> {
  const abort = new AbortController();
  const signals = signal ? [abort.signal, signal] : [abort.signal];
  const response = await s3Call(object, () =>
    deps.s3.send(
      new GetObjectCommand({
        Bucket: object.bucket,
        Key: object.key,
        VersionId: object.versionId,
        IfMatch: object.etag,
      }),
      { abortSignal: AbortSignal.any(signals) },
    ),
  );
  if (response === 'sse-c')
    return { kind: 'verdict', verdict: unscannable('unsupported-encryption'), size: expectedSize };
  const body = response.Body as Readable | undefined;
  try {
    if (!body) throw new IncompleteDownloadError('GetObject returned no body');
    // S3's answer for this exact version/ETag wins over the size in the job.
    const size = response.ContentLength ?? expectedSize;
    if (response.SSECustomerAlgorithm) return { kind: 'verdict', verdict: unscannable('unsupported-encryption'), size };
    if (size > limit) return { kind: 'verdict', verdict: unscannable('too-large'), size };
    const reply = await deps.scanner.scan(body, signal);
    if (reply.bytes > size) throw new IncompleteDownloadError(`GetObject returned ${reply.bytes} bytes, not ${size}`);
    return { kind: 'reply', reply: reply.reply, bytes: reply.bytes, size };
  } finally {
    // A detection (or a decision from the headers) ends the work early; stop the download too.
    abort.abort();
    if (body && !body.destroyed) body.destroy();
  }
}

function unscannable(reason: 'too-large' | 'unsupported-encryption'): Verdict {
  return { verdict: 'Unscannable', reason };
}

interface S3ErrorShape {
  readonly name?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/**
 * Runs an S3 call on the pinned object and turns S3's answers into the contract. A 400 to a plain
 * HeadObject/GetObject is what S3 answers for an SSE-C object requested without its key.
 */
async function s3Call<T>(object: ObjectIdentity, call: () => Promise<T>): Promise<T | 'sse-c'> {
  try {
    return await call();
  } catch (error) {
    const shape = (typeof error === 'object' && error !== null ? error : {}) as S3ErrorShape;
    const status = shape.$metadata?.httpStatusCode;
    const where = `s3://${object.bucket}/${object.key}${object.versionId ? ` version ${object.versionId}` : ''}`;
    if (status === 404 || shape.name === 'NoSuchKey' || shape.name === 'NotFound' || shape.name === 'NoSuchVersion') {
      throw new ObjectNotFoundError(`${where} does not exist`, { cause: error });
    }
    if (status === 412 || shape.name === 'PreconditionFailed') {
      throw new ObjectNotFoundError(`${where} no longer has ETag ${object.etag}`, { cause: error });
    }
    if (status === 403 || shape.name === 'AccessDenied') {
      throw new AccessDeniedError(`access denied to ${where}`, { cause: error });
    }
    if (status === 400) return 'sse-c';
    throw error;
  }
}

function isTransient(error: unknown): boolean {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as S3ErrorShape & { code?: string };
  const status = shape.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429;
  // Socket-level failures while reading the body.
  return typeof shape.code === 'string' || shape.name === 'TimeoutError';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
