/**
 * Stream integrity over clamd's unix socket, the image's placement: every byte of an object reaches clamd
 * before the end-of-stream terminator, whatever the object's size relative to the INSTREAM chunk and
 * however slowly clamd reads. The tail marker sits in the object's last bytes, so only a complete stream
 * is Infected; a truncated one would come back Clean.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import NodeClam from 'clamscan';
import { type ClamdServer, startClamd } from '../../local/runtime/clamd.js';
import { TAIL_MARKER, TEST_SIGNATURES } from '../../scanner-image/signatures/generate.js';
import {
  type ClamdScanner,
  ClamdUnavailableError,
  createClamdScanner,
  INSTREAM_CHUNK_BYTES,
} from '../../scanner-image/src/clamd-client.js';
import { mapClamdReply } from '../../scanner-image/src/clamd-reply.js';
import type { ClamdAddress } from '../../scanner-image/src/config.js';
import { type ClamdProxy, startClamdProxy, TEST_CLAMD_LIMITS } from './harness.js';

jest.setTimeout(180_000);

const KiB = 1024;
const MiB = 1024 * KiB;
/** The sizes around the INSTREAM chunk where a misordered terminator cut the tail off (measured). */
const SIZES = [INSTREAM_CHUNK_BYTES + 1, 300 * KiB, MiB + 100, 8 * MiB - 64];

function withTailMarker(size: number): Buffer {
  const body = Buffer.alloc(size, 0x20);
  TAIL_MARKER.copy(body, size - TAIL_MARKER.length);
  return body;
}

/** The body as the SDK hands it over: a stream of 64 KiB pieces. */
function asDownload(body: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += 64 * KiB) pieces.push(body.subarray(offset, offset + 64 * KiB));
  return Readable.from(pieces);
}

interface Placement {
  readonly name: string;
  address(): ClamdAddress;
}

describe("INSTREAM over clamd's unix socket", () => {
  let clamd: ClamdServer;
  let slowReader: ClamdProxy;
  const placements: Placement[] = [
    { name: "clamd's socket", address: () => clamd.address },
    { name: 'a slow-reading proxy', address: () => slowReader.address },
  ];

  beforeAll(async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'scanflow-stream-test-'));
    clamd = await startClamd({ logDir, workDir: join(logDir, 'clamd'), limits: TEST_CLAMD_LIMITS });
    expect(clamd.address.kind).toBe('socket');
    slowReader = await startClamdProxy(clamd.address, { readDelayMs: 2 });
  });

  afterAll(async () => {
    await slowReader?.close();
    await clamd?.stop();
  });

  describe.each(placements)('through $name', (placement) => {
    let scanner: ClamdScanner;
    beforeAll(async () => {
      scanner = await createClamdScanner(placement.address());
    });

    test.each(SIZES)('a signature in the last bytes of %i bytes is Infected, one at a time', async (size) => {
      const body = withTailMarker(size);
      for (let run = 0; run < 3; run += 1) {
        const reply = await scanner.scan(asDownload(body));
        expect({ size, run, outcome: mapClamdReply(reply.reply), bytes: reply.bytes }).toEqual({
          size,
          run,
          outcome: {
            kind: 'verdict',
            verdict: { verdict: 'Infected', signature: `${TEST_SIGNATURES.tailMarker}.UNOFFICIAL` },
          },
          bytes: size,
        });
      }
    });

    test.each(SIZES)('a signature in the last bytes of %i bytes is Infected, four at once', async (size) => {
      const body = withTailMarker(size);
      const replies = await Promise.all(Array.from({ length: 4 }, () => scanner.scan(asDownload(body))));
      for (const reply of replies) {
        expect({ size, reply: reply.reply, bytes: reply.bytes }).toEqual({
          size,
          reply: `stream: ${TEST_SIGNATURES.tailMarker}.UNOFFICIAL FOUND`,
          bytes: size,
        });
      }
    });
  });

  test('a download that breaks off mid-stream rejects with its own error, not a reply', async () => {
    const scanner = await createClamdScanner(clamd.address);
    const body = new PassThrough();
    body.write(Buffer.alloc(INSTREAM_CHUNK_BYTES * 2));
    setTimeout(() => body.destroy(new Error('connection reset by S3')), 50);
    await expect(scanner.scan(body)).rejects.toThrow('connection reset by S3');
  });

  test('a download that stalls while clamd goes idle ends the scan as ClamdUnavailableError, not a hang', async () => {
    const scanner = await createClamdScanner(clamd.address, { scanTimeoutMs: 500 });
    const stalled = new PassThrough();
    stalled.write(Buffer.alloc(INSTREAM_CHUNK_BYTES * 2));
    await expect(scanner.scan(stalled)).rejects.toThrow(ClamdUnavailableError);
    expect(stalled.destroyed).toBe(true);
  });

  test('an abort ends the scan with the abort reason, before and after the connection is made', async () => {
    const scanner = await createClamdScanner(clamd.address);
    const early = new AbortController();
    early.abort(new Error('shutdown'));
    await expect(scanner.scan(new PassThrough(), early.signal)).rejects.toThrow('shutdown');
    const late = new AbortController();
    const body = new PassThrough();
    body.write(Buffer.alloc(1024));
    const scanning = scanner.scan(body, late.signal);
    setTimeout(() => late.abort(new Error('task closed')), 100);
    await expect(scanning).rejects.toThrow('task closed');
  });

  test('the byte count is what the socket accepted: a body shorter than its object reports only its own bytes', async () => {
    const scanner = await createClamdScanner(clamd.address);
    const reply = await scanner.scan(asDownload(Buffer.alloc(MiB + 100).subarray(0, 300 * KiB)));
    expect(reply).toEqual({ reply: 'stream: OK', bytes: 300 * KiB, complete: true });
  });

  describe('against a clamd that misbehaves', () => {
    /** A stand-in clamd on a unix socket of its own that answers each INSTREAM session with `answer`. */
    async function fakeClamd(answer: (client: Socket) => void): Promise<{ address: ClamdAddress; close(): void }> {
      const sockets = new Set<Socket>();
      const server = createServer((client) => {
        sockets.add(client);
        client.on('error', () => undefined);
        client.once('data', () => answer(client));
      });
      const path = join(mkdtempSync(join(tmpdir(), 'fake-clamd-')), 'clamd.sock');
      await new Promise<void>((resolve) => server.listen(path, resolve));
      return {
        address: { kind: 'socket', path },
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      };
    }

    test('an OK that arrives before the terminator was sent is reported as incomplete', async () => {
      // Answers at once and keeps reading, as no real clamd does: the OK cannot be about the whole object.
      const fake = await fakeClamd((client) => {
        client.write('stream: OK\0');
        client.resume();
      });
      try {
        const scanner = await createClamdScanner(fake.address);
        const reply = await scanner.scan(asDownload(withTailMarker(2 * MiB)));
        expect(reply).toMatchObject({ reply: 'stream: OK', complete: false });
      } finally {
        fake.close();
      }
    });

    test('a reply cut off before its NUL is no reply: ClamdUnavailableError, not "stream: OK"', async () => {
      // `stream: OK` could be the start of `stream: OKsomething FOUND`.
      const fake = await fakeClamd((client) => {
        client.resume();
        client.end('stream: OK');
      });
      try {
        const scanner = await createClamdScanner(fake.address);
        await expect(scanner.scan(asDownload(Buffer.alloc(1024)))).rejects.toThrow(ClamdUnavailableError);
      } finally {
        fake.close();
      }
    });

    test("real clamd's answers are complete: after the terminator, NUL-terminated", async () => {
      const scanner = await createClamdScanner(clamd.address);
      await expect(scanner.scan(asDownload(withTailMarker(300 * KiB)))).resolves.toMatchObject({ complete: true });
      await expect(scanner.scan(asDownload(Buffer.alloc(300 * KiB)))).resolves.toEqual({
        reply: 'stream: OK',
        bytes: 300 * KiB,
        complete: true,
      });
    });
  });

  /**
   * Why the worker frames INSTREAM itself: the `clamscan` package's passthrough (kept for PING and
   * VERSION) writes the terminator from flush() while framed data is still queued, so a slow reader gets
   * the end before the tail and answers OK. If this starts failing, the package was fixed: re-evaluate.
   */
  test("the clamscan package's INSTREAM passthrough loses the tail through the slow reader (why it is not used)", async () => {
    const address = slowReader.address;
    const clam = await new NodeClam().init({
      clamdscan: {
        socket: address.kind === 'socket' ? address.path : false,
        host: false,
        port: false,
        timeout: 60_000,
        localFallback: false,
        bypassTest: true,
      },
      clamscan: { active: false },
      preference: 'clamdscan',
    });
    const replies: string[] = [];
    for (const size of SIZES) {
      const result = await new Promise<string>((resolve, reject) => {
        const av = clam.passthrough();
        av.on('scan-complete', (r: { resultString?: string }) => resolve(r.resultString ?? ''));
        av.on('error', reject);
        av.resume();
        asDownload(withTailMarker(size)).pipe(av);
      });
      replies.push(result.replace(/\0/g, '').trim());
    }
    expect(replies).toContain('stream: OK');
  });
});
