import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import NodeClam from 'clamscan';
import { CLAMD_LIMITS } from '../../functions/commons/clamd-limits.js';
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
  /**
   * Bytes of the body that the socket accepted, counted in each frame's write callback, before the
   * end-of-stream terminator was written. Fewer than the object has means clamd saw a prefix: never Clean.
   */
  readonly bytes: number;
  /**
   * True when the reply came after the whole body and the terminator had been handed to the socket. clamd
   * answers only after the terminator (an early `ERROR` is the exception); an early `OK` cannot be about
   * the whole object, so the worker never takes it for Clean.
   */
  readonly complete: boolean;
}

export interface ClamdScanner {
  /** Streams `body` into clamd INSTREAM with backpressure; never holds the whole body. */
  scan(body: Readable, signal?: AbortSignal): Promise<ClamdScanReply>;
  /** clamd's raw VERSION reply. */
  version(): Promise<string>;
  ping(): Promise<void>;
}

/**
 * How long a scan connection may stay silent before the worker gives up on clamd (default of
 * `scanTimeoutMs`). After the last chunk clamd is silent while it scans, for at most its MaxScanTime, whose
 * clock starts once the stream is in: a minute more lets clamd's own Heuristics.Limits.Exceeded.MaxScanTime
 * answer (→ Unscannable) arrive first, so only a clamd that does not keep its limit is given up on. It is
 * also longer than clamd's ReadTimeout, so on a stalled download clamd drops the stream first, and shorter
 * than the ScanObject base timeout (functions/commons/scan-execution.ts), so a clamd that ignores its limit
 * is normally given up on (→ retry, ScannerUnavailableError) before the task times out.
 * test/unit/worker-clamd-conf.test.ts holds these relations.
 */
export const DEFAULT_SCAN_IDLE_TIMEOUT_MS = CLAMD_LIMITS.maxScanTimeMs + 60_000;

export interface ClamdScannerOptions {
  /** Idle time on a scan connection before giving up. Default {@link DEFAULT_SCAN_IDLE_TIMEOUT_MS}. */
  readonly scanTimeoutMs?: number;
  /** Idle time for PING/VERSION. */
  readonly controlTimeoutMs?: number;
}

/** INSTREAM chunk size; clamd's own clients use similar sizes. */
export const INSTREAM_CHUNK_BYTES = 256 * 1024;
/** A zero-length frame ends an INSTREAM session. */
const END_OF_STREAM = Buffer.alloc(4);

/** The clamscan package for PING and VERSION, configured for clamd only (no local fallback, no probing). */
async function connectControl(address: ClamdAddress, timeoutMs: number): Promise<NodeClam> {
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
 * clamd over its socket. PING and VERSION go through the `clamscan` package. INSTREAM does not: the
 * package's passthrough writes the end-of-stream terminator from its `flush()` straight to the socket
 * while framed data can still be queued inside its transform, so over a unix socket clamd scanned only a
 * prefix and answered OK for objects with a signature in their last chunk (measured; TCP on loopback hides
 * it). `scanInstream` writes each frame, waits for the socket to accept it, and only then writes the next
 * frame or the terminator.
 */
export async function createClamdScanner(
  address: ClamdAddress,
  options: ClamdScannerOptions = {},
): Promise<ClamdScanner> {
  const scanTimeoutMs = options.scanTimeoutMs ?? DEFAULT_SCAN_IDLE_TIMEOUT_MS;
  const control = await connectControl(address, options.controlTimeoutMs ?? 5_000);

  return {
    scan: (body, signal) => scanInstream(address, body, { idleTimeoutMs: scanTimeoutMs, signal }),

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

/** A connection to clamd wherever it listens: its unix socket (the image's placement) or TCP. */
export function connectClamd(address: ClamdAddress): Socket {
  return address.kind === 'socket'
    ? createConnection({ path: address.path })
    : createConnection({ host: address.host, port: address.port });
}

/**
 * Regroups a stream's reads (the SDK yields 16–64 KiB pieces) into chunks of `size` bytes: fewer frames
 * and syscalls for clamd, at most one chunk held per scan.
 */
export async function* regroup(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    pending.push(piece);
    pendingBytes += piece.length;
    if (pendingBytes >= size) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

/** The object's body failed while being read: the download's problem, not clamd's. */
class BodyReadError extends Error {
  constructor(cause: unknown) {
    super('reading the object failed', { cause });
    this.name = 'BodyReadError';
  }
}

async function* readBody(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* body;
  } catch (error) {
    throw new BodyReadError(error);
  }
}

/** Writes `data` and resolves once the socket has accepted it (handed to the kernel). */
function write(socket: Socket, ...data: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // One writev for prefix and payload; the last part's callback means all of them were accepted.
    socket.cork();
    const last = data.length - 1;
    for (const [index, part] of data.entries()) {
      if (index === last) socket.write(part, (error) => (error ? reject(error) : resolve()));
      else socket.write(part);
    }
    socket.uncork();
  });
}

function frameLength(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(length, 0);
  return prefix;
}

/**
 * clamd's reply on `socket`: the text before its NUL. clamd ends every reply to a `z` command with NUL, so
 * text without one was cut off (`stream: OK` could be the start of `stream: OKsomething FOUND`): that is
 * no reply. Resolves '' when the connection ends without any; rejects when it fails with nothing received.
 */
function collectReply(socket: Socket, idleTimeoutMs: number): Promise<string> {
  const chunks: Buffer[] = [];
  const received = (): Buffer => Buffer.concat(chunks);
  const reply = new Promise<string>((resolve, reject) => {
    const cutOff = (): void => {
      const partial = received().toString('utf8').trim();
      reject(new ClamdUnavailableError(`clamd's reply ended without its NUL terminator: "${partial.slice(0, 200)}"`));
    };
    socket.setTimeout(idleTimeoutMs, () =>
      socket.destroy(new ClamdUnavailableError(`clamd connection idle for ${idleTimeoutMs} ms`)),
    );
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = received();
      const end = all.indexOf(0);
      if (end !== -1) resolve(all.subarray(0, end).toString('utf8').trim());
    });
    socket.on('error', (error) => {
      // clamd closes right after an early ERROR reply; a complete reply already in is the answer (the
      // promise is settled then and this does nothing).
      if (chunks.length > 0) cutOff();
      else if (error instanceof ClamdUnavailableError) reject(error);
      else reject(new ClamdUnavailableError(`clamd connection failed: ${describe(error)}`, { cause: error }));
    });
    socket.on('close', () => (chunks.length > 0 ? cutOff() : resolve('')));
  });
  // Awaited later; a failure before then must not count as unhandled.
  reply.catch(() => undefined);
  return reply;
}

/**
 * One INSTREAM session: `zINSTREAM\0`, the body as length-prefixed frames, a zero-length frame, then
 * clamd's reply. Ordering is the point: each frame is written only after the socket accepted the previous
 * one, and the terminator only after the last, so clamd can never see the end before the data; `bytes`
 * counts what the socket accepted. One frame in flight is also the backpressure: a fast download waits
 * for clamd, and memory stays at one chunk.
 *
 * clamd may answer before the stream ends (`INSTREAM size limit exceeded. ERROR`, then it closes); that
 * reply wins over the write error its close causes. A body that fails rethrows the body's own error.
 */
export async function scanInstream(
  address: ClamdAddress,
  body: Readable,
  options: { readonly idleTimeoutMs: number; readonly signal?: AbortSignal },
): Promise<ClamdScanReply> {
  const { signal } = options;
  signal?.throwIfAborted();
  const socket = connectClamd(address);
  const reply = collectReply(socket, options.idleTimeoutMs);
  // Destroy with an error: a plain destroy() would leave a pending connect or write waiting forever.
  const onAbort = (): void => {
    socket.destroy(new ClamdUnavailableError('scan aborted'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  // When the connection ends (clamd replied early, died or went idle), a download that is still being
  // waited on must not hold the scan: end it, and let the reply (or the connection's failure) decide.
  let connectionClosed = false;
  socket.once('close', () => {
    connectionClosed = true;
    body.destroy();
  });
  let bytes = 0;
  // Whether the terminator had been handed to the socket when the reply arrived (read in the reply's own
  // continuation, which runs right after the data event that completed it).
  let terminatorWritten = false;
  let complete = false;
  reply.then(
    () => {
      complete = terminatorWritten;
    },
    () => undefined,
  );
  try {
    try {
      await once(socket, 'connect');
      await write(socket, Buffer.from('zINSTREAM\0', 'latin1'));
      for await (const chunk of regroup(readBody(body), INSTREAM_CHUNK_BYTES)) {
        await write(socket, frameLength(chunk.length), chunk);
        bytes += chunk.length;
      }
      const terminator = write(socket, END_OF_STREAM);
      terminatorWritten = true;
      await terminator;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof BodyReadError && !connectionClosed) throw error.cause;
      // The connection ended first (writing failed, or we ended the download because of it): clamd's
      // reply, if any, decides below; `bytes` tells how much of the object it got.
    }
    let text: string;
    try {
      text = await reply;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
    if (text === '') throw new ClamdUnavailableError('clamd closed the connection without a reply');
    return { reply: text, bytes, complete };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
