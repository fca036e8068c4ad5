import { deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { xz } from '@napi-rs/lzma';
import { fileTypeFromBuffer, supportedExtensions } from 'file-type';
import {
  deflatedEntry,
  lzmaAlone,
  lzmaEntry,
  type RawZipEntry,
  rawZip,
  storedEntry,
  tarArchive,
  ZIP_METHOD,
  zstdFrame,
} from '../../local/crafted-archives.js';
import { zip } from '../../local/samples.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import { CLAMAV_MAX_FILE_BYTES } from '../../scanner-image/src/config.js';
import {
  bufferReader,
  CLASSIFIED_EXTENSIONS,
  type GateLimits,
  type GateOutcome,
  HEAD_BYTES,
  inspectContent,
  isLzmaAlone,
  isZlibStream,
  LocalHeaderIndex,
  type RangeReader,
} from '../../scanner-image/src/content-gate.js';
import { ContainerStreamInspector } from '../../scanner-image/src/content-gate-stream.js';

const GiB = 1024 ** 3;
const limits: GateLimits = {
  maxMemberBytes: CLAMAV_MAX_FILE_BYTES,
  maxDirectoryBytes: 64 * 1024 * 1024,
  maxNestingDepth: 3,
  maxNestedMembers: 16,
  maxNestedInflateBytes: 1024 * 1024,
  maxStreamInflateBytes: CLAMAV_MAX_FILE_BYTES,
  maxLocalHeaderReads: 100,
  maxJudgedMembers: 10_000,
};

/** A reader over `content` that counts its reads, like the worker's ranged GetObject calls. */
function countingReader(content: Buffer): RangeReader & { reads: Array<[number, number]> } {
  const inner = bufferReader(content);
  const reads: Array<[number, number]> = [];
  return {
    size: inner.size,
    reads,
    read(start, endInclusive, signal) {
      reads.push([start, endInclusive]);
      return inner.read(start, endInclusive, signal);
    },
  };
}

function gate(content: Buffer, gateLimits: GateLimits = limits): Promise<GateOutcome> {
  return inspectContent(content.subarray(0, HEAD_BYTES), countingReader(content), gateLimits);
}

/** What the streaming half says of `content` fed in one piece. */
async function streamedOutcome(content: Buffer): Promise<GateOutcome> {
  const inspector = new ContainerStreamInspector(limits);
  await inspector.write(content);
  return inspector.end();
}

/** Deterministic "random" bytes (xorshift), so a failure reproduces. */
function noise(bytes: number, seed = 0x2545f491): Buffer {
  const out = Buffer.alloc(bytes);
  let state = seed;
  for (let index = 0; index < bytes; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[index] = state & 0xff;
  }
  return out;
}

/** A member payload of `bytes` (well past HEAD_BYTES, so the gate has to read the directory from the tail). */
const filler = (bytes: number): Buffer => noise(bytes, 7);

const CONTENT_TYPES =
  '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>';

describe('content gate: what file-type recognises', () => {
  it('classifies every type file-type 21 can report (an allowlist: a new type fails here, not in production)', () => {
    expect([...supportedExtensions].filter((extension) => !CLASSIFIED_EXTENSIONS.has(extension))).toEqual([]);
  });

  it.each([
    ['plain text', Buffer.from('Hello from scanflow. Nothing to see here.\n')],
    ['text that starts like a zlib header ("x^")', Buffer.from(`x^${'not compressed at all '.repeat(40)}`)],
    ['random bytes', noise(64 * 1024)],
    ['EICAR itself (clamd decides about raw bytes)', EICAR],
    ['gzip', gzipSync(Buffer.from('gzip is unpacked by ClamAV'))],
    ['bzip2', Buffer.concat([Buffer.from('BZh91AY&SY'), noise(200)])],
    ['xz', xz.compressSync(Buffer.from('xz is unpacked by ClamAV'))],
    ['PDF', Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n')],
    ['an empty object', Buffer.alloc(0)],
  ])('lets %s pass', async (_name, content) => {
    await expect(gate(content)).resolves.toEqual({ kind: 'scannable' });
  });

  it.each([
    ['.zst (zstd)', zstdFrame(EICAR), /zst/],
    ['.lzma (LZMA alone)', lzmaAlone(EICAR), /LZMA/],
    ['a raw zlib stream', deflateSync(EICAR), /zlib/],
    ['a raw zlib stream of a large object (only its first bytes seen)', deflateSync(noise(100_000)), /zlib/],
    ['.lz (lzip)', Buffer.concat([Buffer.from('LZIP\x01\x0c'), noise(100)]), /lz/],
    ['.lz4', Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), noise(100)]), /lz4/],
    ['.Z (compress)', Buffer.concat([Buffer.from([0x1f, 0x9d, 0x90]), noise(100)]), /Z/],
    [
      'an ar archive (.deb is one)',
      Buffer.from('!<arch>\ndata.tar.xz/    0           0     0     644     4         `\nxxxx'),
      /ar/,
    ],
  ])('calls %s Unscannable unsupported-format', async (_name, content, detail) => {
    const outcome = await gate(content);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(detail);
  });

  it('calls a zstd stream that opens with a skippable frame unsupported-format (file-type misses it; zstd -d does not)', async () => {
    const skippable = Buffer.alloc(8 + 16);
    skippable.writeUInt32LE(0x184d2a5f, 0);
    skippable.writeUInt32LE(16, 4);
    const content = Buffer.concat([skippable, zstdFrame(EICAR)]);
    await expect(fileTypeFromBuffer(content)).resolves.toBeUndefined();
    const outcome = await gate(content);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/skippable frame/);
    const inTar = await streamedOutcome(tarArchive([{ name: 'payload.bin', content }]));
    expect(inTar).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('needs its own checks for raw zlib and .lzma: file-type recognises neither', async () => {
    await expect(fileTypeFromBuffer(deflateSync(EICAR))).resolves.toBeUndefined();
    await expect(fileTypeFromBuffer(lzmaAlone(EICAR))).resolves.toBeUndefined();
  });

  it('does not take text or random bytes for zlib or LZMA', () => {
    for (let seed = 1; seed <= 2000; seed += 1) {
      const sample = noise(4100, seed);
      expect(isZlibStream(sample) || isLzmaAlone(sample)).toBe(false);
    }
    // 0x78 0x5E passes the 2-byte header check; inflating proves it is not zlib.
    expect(isZlibStream(Buffer.from(`x^${'plain words '.repeat(50)}`))).toBe(false);
    expect(isZlibStream(deflateSync(Buffer.from('yes')))).toBe(true);
    expect(isLzmaAlone(Buffer.from(']'.repeat(100)))).toBe(false);
    // A zero-filled binary header with a power-of-two field where the dictionary size would be.
    const zeros = Buffer.alloc(64);
    zeros.writeUInt32LE(4096, 1);
    expect(isLzmaAlone(zeros)).toBe(false);
    expect(isLzmaAlone(lzmaAlone('known or unknown size, it is LZMA'))).toBe(true);
  });

  it('calls an armored PGP message Unscannable encrypted', async () => {
    const message = Buffer.from(`-----BEGIN PGP MESSAGE-----\n\nhQEMA${'x'.repeat(200)}\n-----END PGP MESSAGE-----\n`);
    await expect(gate(message)).resolves.toMatchObject({ kind: 'unscannable', reason: 'encrypted' });
  });
});

describe('content gate: zip central directory', () => {
  it('lets stored, deflated and bzip2 members pass', async () => {
    const content = rawZip([
      storedEntry('readme.txt', 'stored'),
      deflatedEntry('data.bin', filler(20_000)),
      { ...storedEntry('b.txt', 'bz'), method: ZIP_METHOD.bzip2 },
      storedEntry('folder/', ''),
    ]);
    await expect(gate(content)).resolves.toEqual({ kind: 'scannable' });
    await expect(gate(await zip([{ name: 'hello.txt', data: 'hello '.repeat(1000) }]))).resolves.toEqual({
      kind: 'scannable',
    });
  });

  it('calls a member compressed with LZMA (method 14) unsupported-format', async () => {
    const outcome = await gate(rawZip([storedEntry('a.txt', 'fine'), lzmaEntry('eicar.com', EICAR)]));
    expect(outcome).toEqual({
      kind: 'unscannable',
      reason: 'unsupported-format',
      detail: 'zip member "eicar.com" uses compression method 14 (LZMA), which ClamAV does not decode',
    });
  });

  it.each([
    [98, 'PPMd'],
    [93, 'zstd'],
    [95, 'xz'],
    [1, 'shrink'],
    [77, undefined],
  ])('calls compression method %i (%s) unsupported-format', async (method, name) => {
    const outcome = await gate(rawZip([{ ...storedEntry('x.bin', filler(100)), method }]));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toContain(`method ${method}${name ? ` (${name})` : ''}`);
  });

  it('calls a member declaring 3 GiB uncompressed limits-exceeded (headers only: the gate reads the directory)', async () => {
    const entry: RawZipEntry = { ...deflatedEntry('big.bin', filler(10_000)), uncompressedSize: 3 * GiB };
    const outcome = await gate(rawZip([entry]));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toContain(`declares ${3 * GiB} bytes uncompressed`);
  });

  it('reads zip64 sizes: a 3 GiB member recorded in zip64 fields is limits-exceeded', async () => {
    const entry: RawZipEntry = { ...deflatedEntry('big.bin', filler(10_000)), uncompressedSize: 3 * GiB, zip64: true };
    await expect(gate(rawZip([entry], { zip64Directory: true }))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'limits-exceeded',
    });
  });

  it('calls small members recorded with zip64 fields, or a zip64 end record, unsupported-format (ClamAV 1.4 reads neither)', async () => {
    const zip64Member = await gate(rawZip([deflatedEntry('eicar.com', EICAR, { zip64: true })]));
    expect(zip64Member).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(zip64Member.kind === 'unscannable' && zip64Member.detail).toContain('zip64 fields');
    const zip64Directory = await gate(rawZip([deflatedEntry('eicar.com', EICAR)], { zip64Directory: true }));
    expect(zip64Directory).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(zip64Directory.kind === 'unscannable' && zip64Directory.detail).toContain('zip64 end-of-central-directory');
  });

  it('calls encrypted members encrypted (traditional PKWARE flag, and AES from zip.js)', async () => {
    await expect(gate(rawZip([storedEntry('secret.txt', filler(100), { flags: 0x0001 })]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'encrypted',
    });
    await expect(
      gate(await zip([{ name: 'secret.txt', data: 'not for your eyes' }], 'scanflow')),
    ).resolves.toMatchObject({ kind: 'unscannable', reason: 'encrypted' });
  });

  it('does not pass a zip whose directory cannot be read: truncated, or corrupt', async () => {
    const whole = rawZip([deflatedEntry('data.bin', filler(20_000)), storedEntry('b.txt', 'b')]);
    const truncated = await gate(whole.subarray(0, whole.length - 40));
    expect(truncated).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(truncated.kind === 'unscannable' && truncated.detail).toMatch(/ClamAV cannot unpack it either/);

    const corrupt = Buffer.from(whole);
    const directoryOffset = corrupt.readUInt32LE(corrupt.length - 6);
    corrupt.writeUInt32LE(0xdeadbeef, directoryOffset);
    await expect(gate(corrupt)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });

    const wrongCount = Buffer.from(whole);
    wrongCount.writeUInt16LE(3, wrongCount.length - 12);
    wrongCount.writeUInt16LE(3, wrongCount.length - 14);
    await expect(gate(wrongCount)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('inspects zip-based types file-type names otherwise: jar and docx', async () => {
    const jar = rawZip([storedEntry('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\n'), lzmaEntry('A.class', 'x')]);
    await expect(fileTypeFromBuffer(jar)).resolves.toMatchObject({ ext: 'jar' });
    await expect(gate(jar)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });

    const docxEntries = [storedEntry('[Content_Types].xml', CONTENT_TYPES)];
    const docx = rawZip([...docxEntries, deflatedEntry('word/document.xml', '<w:document/>')]);
    await expect(fileTypeFromBuffer(docx)).resolves.toMatchObject({ ext: 'docx' });
    await expect(gate(docx)).resolves.toEqual({ kind: 'scannable' });
    const lzmaDocx = rawZip([...docxEntries, lzmaEntry('word/document.xml', '<w:document/>')]);
    const outcome = await gate(lzmaDocx);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/^docx member "word\/document.xml"/);
  });

  it('finds the directory of a zip with bytes before it (a CRX header)', async () => {
    const header = Buffer.alloc(16);
    header.write('Cr24', 0, 'latin1');
    header.writeUInt32LE(3, 4);
    header.writeUInt32LE(4, 8);
    const crx = rawZip([lzmaEntry('background.js', 'x')], { prefix: header });
    await expect(fileTypeFromBuffer(crx)).resolves.toMatchObject({ ext: 'crx' });
    await expect(gate(crx)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('reads the tail, the directory and one local header per member of a large zip; nothing of a small one', async () => {
    const large = rawZip([deflatedEntry('a.bin', filler(300_000)), storedEntry('b.txt', 'b')]);
    const reader = countingReader(large);
    await expect(inspectContent(large.subarray(0, HEAD_BYTES), reader, limits)).resolves.toEqual({ kind: 'scannable' });
    expect(reader.reads).toHaveLength(3 + 2);
    const readBytes = reader.reads.reduce((sum, [start, end]) => sum + end - start + 1, 0);
    expect(readBytes).toBeLessThan(70_000);

    const small = rawZip([storedEntry('b.txt', 'b')]);
    const untouched: RangeReader = {
      size: small.length,
      read: () => Promise.reject(new Error('no read expected')),
    };
    await expect(inspectContent(small, untouched, limits)).resolves.toEqual({ kind: 'scannable' });
  });

  it('takes local headers from a LocalHeaderIndex that saw the object stream by, instead of reading them', async () => {
    const large = rawZip([deflatedEntry('a.bin', filler(300_000)), storedEntry('b.txt', 'b')]);
    const index = new LocalHeaderIndex();
    for (let at = 0; at < large.length; at += 7) index.push(large.subarray(at, at + 7));
    const reader = countingReader(large);
    await expect(inspectContent(large.subarray(0, HEAD_BYTES), reader, limits, undefined, index)).resolves.toEqual({
      kind: 'scannable',
    });
    expect(reader.reads).toHaveLength(3);
  });

  it('judges each member by its local header too, which is what ClamAV decodes with', async () => {
    // The central directory says deflate; the local header says LZMA.
    const disagreeing = rawZip([storedEntry('a.txt', 'a'), deflatedEntry('eicar.com', EICAR)]);
    const second = disagreeing.indexOf(Buffer.from('PK\x03\x04', 'latin1'), 4);
    disagreeing.writeUInt16LE(ZIP_METHOD.lzma, second + 8);
    const outcome = await gate(disagreeing);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toContain('(local header) uses compression method 14');

    // Python's zipfile with force_zip64: zip64 sizes in the local header only (measured: clamd answers OK).
    const localZip64 = await gate(rawZip([deflatedEntry('eicar.com', EICAR, { zip64: 'local' })]));
    expect(localZip64).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(localZip64.kind === 'unscannable' && localZip64.detail).toContain('(local header) records its sizes');

    const missing = rawZip([storedEntry('a.txt', 'a'), storedEntry('b.txt', 'b')]);
    missing.writeUInt32LE(0, missing.indexOf(Buffer.from('PK\x03\x04', 'latin1'), 4));
    await expect(gate(missing)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('falls back to ranged reads for local headers only up to maxLocalHeaderReads', async () => {
    const entries = Array.from({ length: 20 }, (_, index) => storedEntry(`file-${index}.bin`, filler(500)));
    const content = rawZip(entries);
    await expect(gate(content, { ...limits, maxLocalHeaderReads: 10 })).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'limits-exceeded',
    });
  });

  it('never answers scannable when a read fails', async () => {
    const large = rawZip([deflatedEntry('a.bin', filler(300_000))]);
    const failing: RangeReader = {
      size: large.length,
      read: () => Promise.reject(Object.assign(new Error('SlowDown'), { $metadata: { httpStatusCode: 503 } })),
    };
    await expect(inspectContent(large.subarray(0, HEAD_BYTES), failing, limits)).rejects.toThrow('SlowDown');
  });

  it('does not count reads of bytes already in memory (an inflated inner zip) against maxLocalHeaderReads', async () => {
    const entries = Array.from({ length: 20 }, (_, index) => storedEntry(`file-${index}.txt`, 'x'));
    const outer = rawZip([deflatedEntry('inner.zip', rawZip(entries))]);
    await expect(gate(outer, { ...limits, maxLocalHeaderReads: 10 })).resolves.toEqual({ kind: 'scannable' });
  });

  it('stops at maxDirectoryBytes', async () => {
    const entries = Array.from({ length: 50 }, (_, index) => storedEntry(`file-${index}.txt`, 'x'));
    await expect(gate(rawZip(entries), { ...limits, maxDirectoryBytes: 1000 })).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'limits-exceeded',
    });
  });
});

describe('content gate: archives inside zips', () => {
  const lzmaZip = rawZip([lzmaEntry('eicar.com', EICAR)]);

  it('opens a stored inner zip in place and finds its LZMA member', async () => {
    const outer = rawZip([storedEntry('readme.txt', filler(5000)), storedEntry('inner.zip', lzmaZip)]);
    const outcome = await gate(outer);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toBe(
      'zip member "inner.zip": zip member "eicar.com" uses compression method 14 (LZMA), which ClamAV does not decode',
    );
  });

  it('inflates a deflated inner archive within the bound and inspects it', async () => {
    await expect(gate(rawZip([deflatedEntry('inner.zip', lzmaZip)]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    await expect(gate(rawZip([deflatedEntry('payload.zst', zstdFrame(EICAR))]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    const cleanInner = rawZip([deflatedEntry('hello.txt', 'hello')]);
    await expect(gate(rawZip([deflatedEntry('inner.zip', cleanInner)]))).resolves.toEqual({ kind: 'scannable' });
  });

  it('goes maxNestingDepth levels down, and calls deeper archives limits-exceeded', async () => {
    let nested = rawZip([deflatedEntry('hello.txt', 'hello')]);
    for (let level = 0; level < limits.maxNestingDepth; level += 1) nested = rawZip([storedEntry('level.zip', nested)]);
    await expect(gate(nested)).resolves.toEqual({ kind: 'scannable' });
    const deeper = rawZip([storedEntry('level.zip', nested)]);
    await expect(gate(deeper)).resolves.toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });

  it('calls a deflated inner archive above maxNestedInflateBytes limits-exceeded rather than guessing', async () => {
    const bigInner = rawZip([storedEntry('noise.bin', filler(2 * 1024 * 1024))]);
    const outcome = await gate(rawZip([deflatedEntry('inner.zip', bigInner)]));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });

  it('calls more archive members than maxNestedMembers limits-exceeded', async () => {
    const inner = rawZip([storedEntry('a.txt', 'a')]);
    const entries = Array.from({ length: limits.maxNestedMembers + 1 }, (_, index) =>
      storedEntry(`part-${index}.zip`, inner),
    );
    await expect(gate(rawZip(entries))).resolves.toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });
});

describe('LocalHeaderIndex', () => {
  it('finds headers cut by chunk boundaries, at their offsets in the whole stream', () => {
    const content = rawZip([storedEntry('a.txt', 'aaaa'), lzmaEntry('b.bin', 'bbbb'), storedEntry('c.txt', 'c')]);
    const offsets: number[] = [];
    for (let at = content.indexOf('PK\x03\x04'); at !== -1; at = content.indexOf('PK\x03\x04', at + 1))
      offsets.push(at);
    for (const chunkBytes of [1, 3, 29, 30, 31, 1000]) {
      const index = new LocalHeaderIndex();
      for (let at = 0; at < content.length; at += chunkBytes) index.push(content.subarray(at, at + chunkBytes));
      expect(offsets.map((offset) => index.at(offset)?.method)).toEqual([0, ZIP_METHOD.lzma, 0]);
      expect(index.complete).toBe(true);
    }
  });

  it('holds at most maxHeaders and then says it is incomplete', () => {
    const index = new LocalHeaderIndex(2);
    index.push(rawZip([storedEntry('a', 'a'), storedEntry('b', 'b'), storedEntry('c', 'c')]));
    expect(index.complete).toBe(false);
  });
});
