import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  AccessDeniedError,
  ObjectNotFoundError,
  ObjectReadError,
  ScannerUnavailableError,
} from '../../functions/commons/errors.js';
import { NULL_VERSION_ID } from '../../functions/commons/scan-execution.js';
import type { ObjectIdentity, ScanJob } from '../../functions/commons/scan-job.js';
import { PIPELINE_ERROR_REASONS, type Verdict } from '../../functions/commons/verdict.js';
import { type ClamdScanner, ClamdUnavailableError } from './clamd-client.js';
import { mapClamdReply } from './clamd-reply.js';
import { CLAMAV_MAX_FILE_BYTES } from './config.js';
import {
  type GateLimits,
  type GateOutcome,
  HEAD_BYTES,
  InflateBudget,
  inspectContent,
  LocalHeaderIndex,
  type RangeReader,
  UndecodableLocalHeaderSweep,
} from './content-gate.js';
import { ContainerStreamInspector } from './content-gate-stream.js';

/**
 * What the content gate may spend on one object. Memory: at most one 1 MiB directory window, the local
 * headers seen in the stream (LOCAL_HEADERS_KEPT of them), and a deflated nested archive per level
 * (maxNestedInflateBytes × maxNestingDepth in the worst case, the data of a gzip or tar member of a zip
 * counted among them, and the stream inspector opening it may hold a zip of as much again); while the object streams, zlib's buffers
 * per gzip level and a zip inside a tar or gzip per level (maxNestedInflateBytes each), and one zip member
 * being captured (at most 64 KiB of its data) plus the classification of each member seen. CPU: gunzipping
 * at most maxStreamInflateBytes per object, which is what clamd inflates (MaxScanSize) anyway; inflating
 * each zip member's first bytes (its first 64 KiB of data at most, a few attempts each); inflating and
 * gunzipping each gzip or tar member of a zip (maxNestedMembers per zip, maxStreamInflateBytes of output for
 * its deflate and again for its gzip layers, stopping at the first finding).
 */
export const GATE_LIMITS: GateLimits = {
  maxMemberBytes: CLAMAV_MAX_FILE_BYTES,
  maxDirectoryBytes: 64 * 1024 * 1024,
  maxNestingDepth: 3,
  maxNestedMembers: 64,
  maxNestedInflateBytes: 16 * 1024 * 1024,
  maxStreamInflateBytes: CLAMAV_MAX_FILE_BYTES,
  maxLocalHeaderReads: 1000,
  maxJudgedMembers: 10_000,
};
/** Twice clamd's MaxFiles: a zip with more members is reported by clamd before the gate runs. */
const LOCAL_HEADERS_KEPT = 20_000;

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
  /** Defaults to GATE_LIMITS. */
  readonly gateLimits?: GateLimits;
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
  /** Why the content gate turned clamd's OK into Unscannable, or why the job was refused (for the job log). */
  readonly detail?: string;
}

/** A download that ended before ContentLength bytes; clamd saw a prefix only, so the reply means nothing. */
class IncompleteDownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteDownloadError';
  }
}

/**
 * The verdict for a job whose object has no version id (an unversioned bucket) or the `null` one
 * (versioning suspended), or undefined for a versioned object. Such a job is refused unread: every later
 * step (TagVerdict, the moves, RemoveFromStaging) could only address "the current null version", which a
 * newer upload may have replaced by then, so no verdict could be pinned to what was scanned. Error, not
 * Unscannable: the bucket's configuration is wrong, and start-scan has already logged it and counted it
 * (UnversionedObjects, alarmed).
 */
export function unversionedRefusal(object: Pick<ObjectIdentity, 'versionId'>): Verdict | undefined {
  if (object.versionId !== undefined && object.versionId !== NULL_VERSION_ID) return undefined;
  return { verdict: 'Error', reason: PIPELINE_ERROR_REASONS.unversionedBucket };
}

/**
 * Scans one exact object version. A job without a version id is refused first ({@link unversionedRefusal}),
 * without any request. The size decides too-large without downloading; GetObject (exact
 * version, conditional on the ETag) is streamed straight into clamd. A Clean from clamd then has to pass
 * the content gate (content-gate.ts), which reads from the same version with ranged GetObjects where it
 * needs more than the first bytes and the zip local headers it saw go by; the gate can only turn Clean
 * into Unscannable, and a failure while it reads is retried like a broken download, never Clean.
 * Throws only the contract errors (ObjectNotFoundError, AccessDeniedError, ScannerUnavailableError,
 * ObjectReadError) or an abort.
 */
export async function scanObject(
  job: Pick<ScanJob, 'object' | 'settings'>,
  deps: ScanObjectDeps,
  options: ScanObjectOptions,
): Promise<ScanOutcome> {
  const { object } = job;
  const refused = unversionedRefusal(object);
  if (refused) {
    const detail = `refused unread: version id ${object.versionId ?? '(none)'}, the bucket is not versioned`;
    return { verdict: refused, bytesScanned: 0, objectSize: object.size ?? 0, detail };
  }
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
  // An empty object has nothing to scan: clamd answers OK for an empty stream (measured), so skip the round trip.
  if (size === 0) return { verdict: { verdict: 'Clean' }, bytesScanned: 0, objectSize: 0 };

  let lastProblem = '';
  // Which side failed last decides the error name: clamd (ScannerUnavailableError) or S3 (ObjectReadError).
  let lastFailedSide: 'scanner' | 'read' = 'scanner';
  for (let attempt = 1; attempt <= options.attempts; attempt += 1) {
    if (attempt > 1) await sleep(options.backoffMs * 2 ** (attempt - 2), options.signal);
    await options.scannerReady?.();
    try {
      const scanned = await downloadAndScan(
        object,
        size,
        limit,
        deps,
        options.gateLimits ?? GATE_LIMITS,
        options.signal,
      );
      if (scanned.kind === 'verdict') return { verdict: scanned.verdict, bytesScanned: 0, objectSize: scanned.size };
      const outcome = mapClamdReply(scanned.reply);
      if (outcome.kind === 'verdict') {
        // A verdict from clamd about fewer bytes than the object has is only trustworthy if it is a finding.
        if (scanned.bytes < scanned.size && outcome.verdict.verdict === 'Clean') {
          throw new IncompleteDownloadError(`clamd saw ${scanned.bytes} of ${scanned.size} bytes`);
        }
        if (!scanned.complete && outcome.verdict.verdict === 'Clean') {
          throw new IncompleteDownloadError('clamd answered OK before the end of the stream');
        }
        if (outcome.verdict.verdict === 'Clean') {
          // clamd's findings (Infected, Unscannable) stand as they are; only its OK is questioned: first by
          // what the gzip and tar layers held as they streamed by, then by the object's type and zip records.
          const streamed = await scanned.streamed;
          const gate =
            streamed.kind === 'unscannable'
              ? streamed
              : await inspectContent(
                  scanned.head,
                  s3RangeReader(object, scanned.size, deps.s3),
                  options.gateLimits ?? GATE_LIMITS,
                  options.signal,
                  scanned.localHeaders,
                  scanned.inflateBudget,
                );
          // Last, a zip ClamAV found where neither the type nor a central directory says so (a stub before
          // it, a local entry no directory lists) with a member it cannot decode.
          const finding: GateOutcome =
            gate.kind === 'unscannable' || scanned.undecodableLocalHeader === undefined
              ? gate
              : { kind: 'unscannable', reason: 'unsupported-format', detail: scanned.undecodableLocalHeader };
          if (finding.kind === 'unscannable') {
            return {
              verdict: { verdict: 'Unscannable', reason: finding.reason },
              bytesScanned: scanned.bytes,
              objectSize: scanned.size,
              detail: finding.detail,
            };
          }
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
  | {
      readonly kind: 'reply';
      readonly reply: string;
      readonly bytes: number;
      /** clamd answered after the terminator was sent (ClamdScanReply.complete). */
      readonly complete: boolean;
      readonly size: number;
      /** The object's first HEAD_BYTES, kept as they went to clamd. */
      readonly head: Buffer;
      readonly localHeaders: LocalHeaderIndex;
      /** What the gate may still inflate for this object; the streamed layers spent part of it already. */
      readonly inflateBudget: InflateBudget;
      /** What the gzip and tar layers the tap opened say (content-gate-stream.ts). */
      readonly streamed: Promise<GateOutcome>;
      /** A zip local header anywhere in the object with a method ClamAV cannot decode, if one went by. */
      readonly undecodableLocalHeader: string | undefined;
    }
  | { readonly kind: 'verdict'; readonly verdict: Verdict; readonly size: number };

async function downloadAndScan(
  object: ObjectIdentity,
  expectedSize: number,
  limit: number,
  deps: ScanObjectDeps,
  gateLimits: GateLimits,
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
  const tap = new ContentTap(gateLimits);
  try {
    if (!body) throw new IncompleteDownloadError('GetObject returned no body');
    // S3's answer for this exact version/ETag wins over the size in the job.
    const size = response.ContentLength ?? expectedSize;
    if (response.SSECustomerAlgorithm) return { kind: 'verdict', verdict: unscannable('unsupported-encryption'), size };
    if (size > limit) return { kind: 'verdict', verdict: unscannable('too-large'), size };
    // The tap passes every byte on unchanged; a failing download destroys it with the same error.
    pipeline(body, tap, () => undefined);
    const reply = await deps.scanner.scan(tap, signal);
    if (reply.bytes > size) throw new IncompleteDownloadError(`GetObject returned ${reply.bytes} bytes, not ${size}`);
    return {
      kind: 'reply',
      reply: reply.reply,
      bytes: reply.bytes,
      complete: reply.complete,
      size,
      head: tap.head,
      localHeaders: tap.localHeaders,
      inflateBudget: tap.inflateBudget,
      streamed: tap.streamed,
      undecodableLocalHeader: tap.undecodableLocalHeader,
    };
  } finally {
    // A detection (or a decision from the headers) ends the work early; stop the download too.
    abort.abort();
    if (!tap.destroyed) tap.destroy();
    if (body && !body.destroyed) body.destroy();
  }
}

/**
 * Sits between GetObject and clamd: keeps the first HEAD_BYTES, notes zip local headers and the first bytes
 * of each zip member (LocalHeaderIndex), and opens gzip
 * and tar layers (ContainerStreamInspector) as the bytes go by, so the content gate needs no second
 * download for them. Each chunk is passed on to clamd at once and unchanged; the tap takes the next one
 * only when the inspector has caught up with this one, which is how a slower inspection slows the
 * download instead of piling up chunks here.
 */
class ContentTap extends Transform {
  readonly localHeaders = new LocalHeaderIndex(LOCAL_HEADERS_KEPT);
  readonly inflateBudget: InflateBudget;
  private readonly sweep = new UndecodableLocalHeaderSweep();
  private readonly headChunks: Buffer[] = [];
  private headBytes = 0;
  private readonly inspector: ContainerStreamInspector;
  private ending: Promise<GateOutcome> | undefined;

  constructor(gateLimits: GateLimits) {
    super();
    this.inflateBudget = new InflateBudget(gateLimits.maxStreamInflateBytes);
    this.inspector = new ContainerStreamInspector(gateLimits, 0, this.inflateBudget);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.headBytes < HEAD_BYTES) {
      const piece = Buffer.from(chunk.subarray(0, HEAD_BYTES - this.headBytes));
      this.headChunks.push(piece);
      this.headBytes += piece.length;
    }
    this.localHeaders.push(chunk);
    this.sweep.push(chunk);
    this.push(chunk);
    // Neither rejects: what the inspector finds (or its own failure) is read from `streamed`, and a member
    // head the index could not classify is read back by the gate. Waiting for both is the backpressure.
    void Promise.all([this.inspector.write(chunk), this.localHeaders.settled()]).then(() => callback());
  }

  override _flush(callback: TransformCallback): void {
    // The end goes to clamd now; the inspector finishes (the last of the gunzip) alongside clamd's scan.
    void this.streamed;
    // The last member being captured is judged with what it got.
    this.localHeaders.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.ending === undefined) this.inspector.abort();
    callback(error);
  }

  /** The streamed containers' verdict, once the whole object has gone by. */
  get streamed(): Promise<GateOutcome> {
    if (this.ending === undefined) {
      this.ending = this.inspector.end();
      // Awaited by scanObject only when clamd says OK; otherwise nobody asks, which is not an error.
      this.ending.catch(() => undefined);
    }
    return this.ending;
  }

  get undecodableLocalHeader(): string | undefined {
    return this.sweep.found;
  }

  get head(): Buffer {
    return Buffer.concat(this.headChunks, this.headBytes);
  }
}

/**
 * The content gate's view of the object: ranged GetObjects on the same version, conditional on the same
 * ETag, with the same error mapping as the download. A short or odd answer is an IncompleteDownloadError,
 * retried like a broken download.
 */
function s3RangeReader(object: ObjectIdentity, size: number, s3: S3Client): RangeReader {
  return {
    size,
    async read(start, endInclusive, signal) {
      const expected = endInclusive - start + 1;
      const response = await s3Call(object, () =>
        s3.send(
          new GetObjectCommand({
            Bucket: object.bucket,
            Key: object.key,
            VersionId: object.versionId,
            IfMatch: object.etag,
            Range: `bytes=${start}-${endInclusive}`,
          }),
          signal ? { abortSignal: signal } : {},
        ),
      );
      if (response === 'sse-c')
        throw new IncompleteDownloadError(`ranged GetObject ${start}-${endInclusive} answered 400`);
      const body = response.Body as Readable | undefined;
      if (!body) throw new IncompleteDownloadError(`ranged GetObject ${start}-${endInclusive} returned no body`);
      const chunks: Buffer[] = [];
      let received = 0;
      for await (const chunk of body) {
        const piece = chunk as Buffer;
        received += piece.length;
        if (received > expected) {
          body.destroy();
          break;
        }
        chunks.push(piece);
      }
      if (received !== expected) {
        throw new IncompleteDownloadError(`ranged GetObject ${start}-${endInclusive} returned ${received} bytes`);
      }
      return Buffer.concat(chunks, expected);
    },
  };
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
