/**
 * The sample objects `npm start` uploads and the e2e test checks: one per verdict path, with the verdict
 * the pipeline must reach. Large samples are sparse files on disk, never buffers in memory.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configure, TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from '@zip.js/zip.js';
import type { UnscannableReason, VerdictName } from '../functions/commons/verdict.js';
import { EICAR, TAIL_MARKER } from '../scanner-image/signatures/generate.js';
import { lzmaEntry, rawZip, zstdFrame } from './crafted-archives.js';
import type { ClamdLimits } from './runtime/clamd.js';

// Node has no web workers for zip.js; compress in-line and deterministically.
configure({ useWebWorkers: false, useCompressionStream: false });

const MiB = 1024 * 1024;

/**
 * Limits the local run configures so every path is reachable with small files:
 * - the worker's MAX_OBJECT_BYTES (16 MiB) below the too-large sample (20 MiB), decided from HeadObject;
 * - clamd keeps the image's options except the sizes, scaled down with MaxFileSize = MaxScanSize.
 */
export const LOCAL_LIMITS = {
  maxObjectBytes: 16 * MiB,
  clamd: {
    StreamMaxLength: '32M',
    MaxFileSize: '16M',
    MaxScanSize: '16M',
  } satisfies ClamdLimits,
  /** MaxRecursion in scanner-image/clamd.conf; the bomb nests deeper. */
  maxRecursion: 16,
} as const;

export interface ExpectedVerdict {
  readonly verdict: VerdictName;
  readonly reason?: UnscannableReason;
  /** A substring of the signature name, for Infected. */
  readonly signature?: string;
}

export type SampleBody =
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'file'; readonly path: string; readonly size: number };

export interface Sample {
  readonly key: string;
  readonly description: string;
  readonly body: SampleBody;
  readonly expected: ExpectedVerdict;
}

export async function zip(
  entries: ReadonlyArray<{ name: string; data: Buffer | string }>,
  password?: string,
): Promise<Buffer> {
  const writer = new ZipWriter(new Uint8ArrayWriter(), password ? { password, encryptionStrength: 3 } : { level: 9 });
  for (const entry of entries) {
    const reader = typeof entry.data === 'string' ? new TextReader(entry.data) : new Uint8ArrayReader(entry.data);
    await writer.add(entry.name, reader, { lastModDate: new Date('2025-01-01T00:00:00Z') });
  }
  return Buffer.from(await writer.close());
}

/**
 * A RAR archive made by the `rar` command (Debian non-free, installed by scripts/bootstrap.sh with clamd's
 * unrar library): nothing in npm writes RAR, and the format is proprietary.
 */
export function rar(entries: ReadonlyArray<{ name: string; data: Buffer | string }>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'scanflow-rar-'));
  try {
    for (const entry of entries) writeFileSync(join(dir, entry.name), entry.data);
    execFileSync('rar', ['a', '-inul', '-ep', 'archive.rar', ...entries.map((e) => e.name)], { cwd: dir });
    return readFileSync(join(dir, 'archive.rar'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `depth` zips, each holding the next; the innermost holds `content`. */
export async function nestedZip(depth: number, content: { name: string; data: Buffer | string }): Promise<Buffer> {
  let current = await zip([content]);
  for (let level = depth - 1; level >= 1; level -= 1)
    current = await zip([{ name: `level-${level + 1}.zip`, data: current }]);
  return current;
}

/** A sparse file of `size` bytes (zeros), optionally ending with `tail`. Costs no memory and almost no disk. */
export function sparseFile(path: string, size: number, tail?: Buffer): { kind: 'file'; path: string; size: number } {
  const fd = openSync(path, 'w');
  try {
    if (tail && tail.length > 0) writeSync(fd, tail, 0, tail.length, size - tail.length);
    else if (size > 0) writeSync(fd, Buffer.alloc(1), 0, 1, size - 1);
  } finally {
    closeSync(fd);
  }
  return { kind: 'file', path, size };
}

const bytes = (data: Buffer | string): SampleBody => ({ kind: 'bytes', bytes: Buffer.from(data) });

/** `size` bytes of spaces ending with `tail`. */
function withTail(size: number, tail: Buffer): Buffer {
  const body = Buffer.alloc(size, 0x20);
  tail.copy(body, size - tail.length);
  return body;
}

/** Above the local MaxFileSize = MaxScanSize (16 MiB), below MAX_OBJECT_BYTES once zipped (it deflates to ~20 KiB). */
const OVER_LIMIT_MEMBER_BYTES = 20 * MiB;

/** Builds every sample; file-backed ones are written under `dir`. */
export async function buildSamples(dir: string): Promise<Sample[]> {
  mkdirSync(dir, { recursive: true });
  const eicarZip = await zip([{ name: 'eicar.com', data: EICAR }]);
  return [
    {
      key: 'samples/clean/hello.txt',
      description: 'plain text',
      body: bytes('Hello from scanflow. Nothing to see here.\n'),
      expected: { verdict: 'Clean' },
    },
    {
      key: 'samples/clean/empty.txt',
      description: 'zero-byte object',
      body: bytes(''),
      expected: { verdict: 'Clean' },
    },
    {
      key: 'samples/clean/quarterly report + notes 100% ünïcødé 日本語.txt',
      description: 'key with spaces, +, % and unicode',
      body: bytes('A file whose name needs encoding everywhere.\n'),
      expected: { verdict: 'Clean' },
    },
    {
      key: 'samples/infected/eicar.com',
      description: 'the EICAR test file',
      body: bytes(EICAR),
      expected: { verdict: 'Infected', signature: 'EICAR' },
    },
    {
      key: 'samples/infected/eicar.zip',
      description: 'EICAR inside a zip',
      body: bytes(eicarZip),
      expected: { verdict: 'Infected', signature: 'EICAR' },
    },
    {
      key: 'samples/infected/eicar-nested.zip',
      description: 'EICAR inside a zip inside a zip',
      body: bytes(await nestedZip(3, { name: 'eicar.com', data: EICAR })),
      expected: { verdict: 'Infected', signature: 'EICAR' },
    },
    {
      key: 'samples/infected/eicar.rar',
      description: 'EICAR inside a RAR archive (clamd unpacks RAR locally as in the image)',
      body: bytes(rar([{ name: 'eicar.com', data: EICAR }])),
      expected: { verdict: 'Infected', signature: 'EICAR' },
    },
    {
      key: 'samples/infected/tail-signature.bin',
      description: '300 KiB with a signature in its last bytes: found only if the whole stream reached clamd',
      body: bytes(withTail(300 * 1024, TAIL_MARKER)),
      expected: { verdict: 'Infected', signature: 'TailMarker' },
    },
    {
      key: 'samples/unscannable/over-limit-member.zip',
      description: `a small zip whose one member unpacks to ${OVER_LIMIT_MEMBER_BYTES / MiB} MiB, above the local MaxFileSize (${LOCAL_LIMITS.clamd.MaxFileSize}), marker at its end`,
      body: bytes(await zip([{ name: 'big.bin', data: withTail(OVER_LIMIT_MEMBER_BYTES, TAIL_MARKER) }])),
      expected: { verdict: 'Unscannable', reason: 'limits-exceeded' },
    },
    {
      key: 'samples/unscannable/encrypted.zip',
      description: 'password-protected (AES) zip',
      body: bytes(await zip([{ name: 'secret.txt', data: 'not for your eyes' }], 'scanflow')),
      expected: { verdict: 'Unscannable', reason: 'encrypted' },
    },
    {
      key: 'samples/unscannable/nested-bomb.zip',
      description: `archives nested ${LOCAL_LIMITS.maxRecursion + 4} deep (beyond MaxRecursion ${LOCAL_LIMITS.maxRecursion})`,
      body: bytes(await nestedZip(LOCAL_LIMITS.maxRecursion + 4, { name: 'payload.txt', data: 'deep down' })),
      expected: { verdict: 'Unscannable', reason: 'limits-exceeded' },
    },
    {
      key: 'samples/unscannable/lzma-member.zip',
      description: 'EICAR in a zip member compressed with LZMA, which clamd does not decode (it answers OK)',
      body: bytes(rawZip([lzmaEntry('eicar.com', EICAR)])),
      expected: { verdict: 'Unscannable', reason: 'unsupported-format' },
    },
    {
      key: 'samples/unscannable/eicar.zst',
      description: 'EICAR in a zstd frame, a format clamd does not unpack (it answers OK)',
      body: bytes(zstdFrame(EICAR)),
      expected: { verdict: 'Unscannable', reason: 'unsupported-format' },
    },
    {
      key: 'samples/unscannable/too-large.bin',
      description: `20 MiB, above the local MAX_OBJECT_BYTES of ${LOCAL_LIMITS.maxObjectBytes / MiB} MiB (decided without download)`,
      body: sparseFile(join(dir, 'too-large.bin'), 20 * MiB, TAIL_MARKER),
      expected: { verdict: 'Unscannable', reason: 'too-large' },
    },
  ];
}
