import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import NodeClam from 'clamscan';
import type { ClamdAddress } from './config.js';

/** clamd could not be reached, dropped the connection or answered nothing useful. The worker retries it. */
export class ClamdUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClamdUnavailableError';
  }
}

export interface ClamdScanReply {
  /** clamd's reply line, e.g. `stream: OK` or `INSTREAM size limit exceeded. ERROR`; map it with mapClamdReply. */
  readonly reply: string;
  /** Bytes handed to clamd. Shorter than the object means the download ended early: never Clean. */
  readonly bytes: number;
}

export interface ClamdScanner {
  /** Streams `body` into clamd INSTREAM with backpressure; never holds the whole body. */
  scan(body: Readable, signal?: AbortSignal): Promise<ClamdScanReply>;
  /** clamd's raw VERSION reply. */
  version(): Promise<string>;
  ping(): Promise<void>;
}

export interface ClamdScannerOptions {
  /** Idle time on a scan connection before giving up; covers clamd working on the tail of a large object. */
  readonly scanTimeoutMs?: number;
  /** Idle time for PING/VERSION. */
  readonly controlTimeoutMs?: number;
}

/** INSTREAM chunk size; clamd's own clients use similar sizes. */
const CHUNK_BYTES = 256 * 1024;

interface ScanCompleteEvent {
  readonly resultString?: string;
}

/** The clamscan package, configured for clamd only (no local clamscan fallback, no probing at start). */
async function connect(address: ClamdAddress, timeoutMs: number): Promise<NodeClam> {
  return new NodeClam().init({
    clamdscan: {
      ...(address.kind === 'socket'
        ? { socket: address.path, host: false, port: false }
        : { socket: false, host: address.host, port: address.port }),
      timeout: timeoutMs,
      localFallback: false,
      bypassTest: true,
      active: true,
      multiscan: false,
    },
    clamscan: { active: false },
    preference: 'clamdscan',
  });
}

/**
 * clamd over the `clamscan` package's INSTREAM passthrough, which frames chunks and respects backpressure
 * (its `scanStream` does not: it buffers a fast source without limit). Where the package loses information
 * we recover it: an `ERROR` reply arrives as an error event whose data holds clamd's text, and a detection
 * mid-stream leaves the passthrough stalled, so we end the pipeline ourselves once a reply is in.
 */
export async function createClamdScanner(
  address: ClamdAddress,
  options: ClamdScannerOptions = {},
): Promise<ClamdScanner> {
  const scanning = await connect(address, options.scanTimeoutMs ?? 16 * 60_000);
  const control = await connect(address, options.controlTimeoutMs ?? 5_000);

  return {
    scan(body, signal) {
      return new Promise<ClamdScanReply>((resolve, reject) => {
        let bytes = 0;
        let settled = false;
        const stop = new AbortController();
        const settle = (action: () => void): void => {
          if (settled) return;
          settled = true;
          action();
          stop.abort();
        };

        const av = scanning.passthrough();
        av.on('scan-complete', (result: ScanCompleteEvent) => {
          settle(() => resolve({ reply: result.resultString ?? '', bytes }));
        });
        av.on('timeout', () => settle(() => reject(new ClamdUnavailableError('clamd connection timed out'))));
        av.on('error', (error: unknown) => {
          const replied = clamdErrorReply(error);
          if (replied !== undefined) settle(() => resolve({ reply: replied, bytes }));
          else
            settle(() =>
              reject(new ClamdUnavailableError(`clamd connection failed: ${describe(error)}`, { cause: error })),
            );
        });

        // Counts what clamd is given and regroups the SDK's small reads into INSTREAM chunks of
        // CHUNK_BYTES: fewer frames and syscalls for clamd, and at most one chunk held per scan.
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const take = (): Buffer => {
          const out = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          return out;
        };
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            pending.push(chunk);
            pendingBytes += chunk.length;
            if (pendingBytes >= CHUNK_BYTES) callback(null, take());
            else callback();
          },
          flush(callback) {
            if (pendingBytes > 0) callback(null, take());
            else callback();
          },
        });
        // The passthrough re-emits what it scanned; nobody needs it, but it must be drained.
        const discard = new Writable({
          write(_chunk, _encoding, callback) {
            callback();
          },
        });
        const signals = signal ? [stop.signal, signal] : [stop.signal];
        pipeline(body, counter, av, discard, { signal: AbortSignal.any(signals) }).catch((error: unknown) => {
          // A reply already settled the scan (the abort is ours), or the source failed: the download's problem.
          settle(() => reject(error));
        });
      });
    },

    async version() {
      try {
        return await control.getVersion();
      } catch (error) {
        throw new ClamdUnavailableError(`clamd VERSION failed: ${describe(error)}`, { cause: error });
      }
    },

    async ping() {
      try {
        const socket = await control.ping();
        socket.end();
      } catch (error) {
        throw new ClamdUnavailableError(`clamd PING failed: ${describe(error)}`, { cause: error });
      }
    },
  };
}

/** clamscan reports an `… ERROR` reply as a NodeClamError with `data.error` = the text before ERROR. */
function clamdErrorReply(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('data' in error)) return undefined;
  const data = (error as { data: unknown }).data;
  if (typeof data === 'object' && data !== null && 'error' in data) {
    const text = (data as { error: unknown }).error;
    if (typeof text === 'string') return `${text} ERROR`;
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
