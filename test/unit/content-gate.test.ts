import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { xz } from '@napi-rs/lzma';
import { fileTypeFromBuffer, supportedExtensions } from 'file-type';
import {
  deflatedEntry,
  lzmaAlone,
  lzmaEntry,
  noise,
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
  inflateHead,
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

describe('content gate: gzip and tar inside zips', () => {
  const tarOfZst = tarArchive([
    { name: 'docs/readme.txt', content: 'plain text\n'.repeat(50) },
    { name: 'x.zst', content: zstdFrame(EICAR) },
  ]);

  it('opens a stored tar member and finds the .zst it holds, naming both', async () => {
    const outcome = await gate(rawZip([storedEntry('data.tar', tarOfZst)]));
    expect(outcome).toEqual({
      kind: 'unscannable',
      reason: 'unsupported-format',
      detail: 'zip member "data.tar": tar member "x.zst": zst (application/zstd) is a format ClamAV does not unpack',
    });
  });

  it('inflates a deflated .gz member and finds the zstd stream it holds', async () => {
    const outcome = await gate(rawZip([deflatedEntry('payload.gz', gzipSync(zstdFrame(EICAR)))]));
    expect(outcome).toEqual({
      kind: 'unscannable',
      reason: 'unsupported-format',
      detail: 'zip member "payload.gz": gzip content: zst (application/zstd) is a format ClamAV does not unpack',
    });
  });

  it('opens a deflated tar.gz member named like plain data, and a tar inside a gzip inside a zip', async () => {
    const tgz = gzipSync(tarOfZst);
    await expect(gate(rawZip([deflatedEntry('notes.txt', tgz)]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    await expect(gate(rawZip([storedEntry('a.tgz', tgz)]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
  });

  it('passes a tar or gzip of plain text inside a zip', async () => {
    const tarOfText = tarArchive([{ name: 'a.txt', content: 'just text\n'.repeat(1000) }]);
    await expect(gate(rawZip([storedEntry('data.tar', tarOfText)]))).resolves.toEqual({ kind: 'scannable' });
    await expect(gate(rawZip([deflatedEntry('data.tar', tarOfText)]))).resolves.toEqual({ kind: 'scannable' });
    await expect(gate(rawZip([deflatedEntry('data.tar.gz', gzipSync(tarOfText))]))).resolves.toEqual({
      kind: 'scannable',
    });
  });

  it('calls a tar member of more than maxNestedInflateBytes limits-exceeded without reading it', async () => {
    const bigTar = tarArchive([{ name: 'noise.bin', content: filler(limits.maxNestedInflateBytes + 1) }]);
    const outer = rawZip([storedEntry('big.tar', bigTar)]);
    const reader = countingReader(outer);
    const outcome = await inspectContent(outer.subarray(0, HEAD_BYTES), reader, limits);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toContain('"big.tar"');
    const readBytes = reader.reads.reduce((sum, [start, end]) => sum + end - start + 1, 0);
    expect(readBytes).toBeLessThan(limits.maxNestedInflateBytes);
  });

  it('calls a deflated gzip member whose content inflates beyond maxStreamInflateBytes limits-exceeded', async () => {
    const tight = { ...limits, maxStreamInflateBytes: 64 * 1024 };
    const gz = gzipSync(Buffer.alloc(256 * 1024, 0x41));
    await expect(gate(rawZip([deflatedEntry('a.gz', gz)]), tight)).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'limits-exceeded',
    });
  });

  it('counts gzip and tar members against maxNestedMembers and maxNestingDepth', async () => {
    const tarOfText = tarArchive([{ name: 'a.txt', content: 'text' }]);
    const entries = Array.from({ length: limits.maxNestedMembers + 1 }, (_, index) =>
      storedEntry(`part-${index}.tar`, tarOfText),
    );
    await expect(gate(rawZip(entries))).resolves.toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });

    // The gzip in a tar in a zip, maxNestingDepth - 2 zips down, is at the deepest level the gate opens;
    // one more zip around it puts it beyond.
    let nested = rawZip([storedEntry('data.tar', tarArchive([{ name: 'a.gz', content: gzipSync('text') }]))]);
    for (let level = 1; level < limits.maxNestingDepth - 1; level += 1) nested = rawZip([storedEntry('l.zip', nested)]);
    await expect(gate(nested)).resolves.toEqual({ kind: 'scannable' });
    const deeper = rawZip([storedEntry('l.zip', nested)]);
    await expect(gate(deeper)).resolves.toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });
});

/** A valid 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

/** What the gate says of `content` when the index saw it stream by in `chunkBytes` pieces, and its reads. */
async function streamedGate(
  content: Buffer,
  chunkBytes: number,
  gateLimits: GateLimits = limits,
): Promise<{ outcome: GateOutcome; reads: number }> {
  const index = new LocalHeaderIndex();
  for (let at = 0; at < content.length; at += chunkBytes) index.push(content.subarray(at, at + chunkBytes));
  index.end();
  const reader = countingReader(content);
  const outcome = await inspectContent(content.subarray(0, HEAD_BYTES), reader, gateLimits, undefined, index);
  return { outcome, reads: reader.reads.length };
}

/** Reads of a zip whose members are all taken from the stream: the tail, the directory's signature, its window. */
const DIRECTORY_READS = 3;

describe('content gate: every zip member by its content', () => {
  const lzmaZip = rawZip([lzmaEntry('eicar.com', EICAR)]);
  // Members well past HEAD_BYTES around the one judged, so the gate has to read or capture, not hold it all.
  const around = (entry: RawZipEntry): RawZipEntry[] => [
    storedEntry('before.txt', filler(10_000)),
    entry,
    deflatedEntry('after.txt', 'plain words\n'.repeat(2000)),
  ];

  it.each([
    ['a zstd stream stored as payload.dat', storedEntry('payload.dat', zstdFrame(EICAR)), /zst/],
    ['a zstd stream deflated as payload.dat', deflatedEntry('payload.dat', zstdFrame(EICAR)), /zst/],
    ['an .lzma stream deflated as data.bin', deflatedEntry('data.bin', lzmaAlone(EICAR)), /LZMA/],
    ['a raw zlib stream stored as notes.txt', storedEntry('notes.txt', deflateSync(EICAR)), /zlib/],
    ['an LZMA zip deflated as readme.txt', deflatedEntry('readme.txt', lzmaZip), /method 14 \(LZMA\)/],
    ['an LZMA zip stored as image.png', storedEntry('image.png', lzmaZip), /method 14 \(LZMA\)/],
    [
      'a zstd stream deflated with a data descriptor',
      deflatedEntry('payload.dat', zstdFrame(EICAR), { dataDescriptor: true }),
      /zst/,
    ],
    [
      'a zstd stream stored with a data descriptor',
      storedEntry('payload.dat', zstdFrame(EICAR), { dataDescriptor: true }),
      /zst/,
    ],
  ])('calls %s unsupported-format, by ranged reads and from the stream alone', async (_name, entry, detail) => {
    for (const content of [rawZip([entry]), rawZip(around(entry))]) {
      const read = await gate(content);
      expect(read).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
      expect(read.kind === 'unscannable' && read.detail).toMatch(new RegExp(`^zip member "${entry.name}": `));
      expect(read.kind === 'unscannable' && read.detail).toMatch(detail);
      for (const chunkBytes of [1, 7, 4096, 64 * 1024]) {
        const { outcome } = await streamedGate(content, chunkBytes);
        expect(outcome).toEqual(read);
      }
    }
  });

  it('keeps a realistic docx (XML parts, a PNG) and a jar (class files, a stored PNG) scannable, with no read per member', async () => {
    const docx = rawZip([
      deflatedEntry('[Content_Types].xml', CONTENT_TYPES),
      deflatedEntry(
        '_rels/.rels',
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
      ),
      deflatedEntry(
        'word/document.xml',
        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${'<w:p><w:r><w:t>Quarterly report, nothing to see here.</w:t></w:r></w:p>'.repeat(400)}</w:body></w:document>`,
      ),
      deflatedEntry('word/media/image1.png', Buffer.concat([PNG, filler(20_000)])),
      deflatedEntry('docProps/core.xml', '<?xml version="1.0"?><cp:coreProperties/>'),
    ]);
    await expect(fileTypeFromBuffer(docx)).resolves.toMatchObject({ ext: 'docx' });
    const classFile = (name: string): Buffer =>
      Buffer.concat([Buffer.from('cafebabe00000041', 'hex'), Buffer.from(`${name} constant pool `.repeat(300))]);
    const jar = rawZip([
      deflatedEntry('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\nCreated-By: 21 (Eclipse Adoptium)\n', {
        dataDescriptor: true,
      }),
      deflatedEntry('com/example/App.class', classFile('App'), { dataDescriptor: true }),
      deflatedEntry('com/example/Util.class', classFile('Util'), { dataDescriptor: true }),
      storedEntry('icons/logo.png', PNG),
      storedEntry('config/app.properties', 'name=app\n', { dataDescriptor: true }),
    ]);
    await expect(fileTypeFromBuffer(jar)).resolves.toMatchObject({ ext: 'jar' });
    for (const content of [docx, jar]) {
      await expect(gate(content)).resolves.toEqual({ kind: 'scannable' });
      for (const chunkBytes of [1, 7, 4096, 64 * 1024]) {
        await expect(streamedGate(content, chunkBytes)).resolves.toEqual({
          outcome: { kind: 'scannable' },
          reads: content.length <= HEAD_BYTES ? 0 : DIRECTORY_READS,
        });
      }
    }
  });

  it('takes each data-descriptor member exactly: stored ones up to their descriptor, deflated ones to their stream end', async () => {
    // Go's archive/zip writes every entry this way: sizes only in the descriptor and the directory.
    const entries = [
      storedEntry('a.txt', 'tiny', { dataDescriptor: true }),
      storedEntry('b.bin', filler(6000), { dataDescriptor: true }),
      deflatedEntry('c.txt', 'short text', { dataDescriptor: true }),
      deflatedEntry('d.txt', 'longer text\n'.repeat(3000), { dataDescriptor: true }),
      storedEntry('e.txt', 'x', { dataDescriptor: true }),
    ];
    const clean = rawZip([...entries, storedEntry('pad.bin', filler(10_000))]);
    const zstd = rawZip([...entries, storedEntry('f.dat', zstdFrame(EICAR), { dataDescriptor: true })]);
    for (const chunkBytes of [1, 5, 30, 4096, 64 * 1024]) {
      // Every member's head came from the stream: no read beyond the directory's.
      await expect(streamedGate(clean, chunkBytes)).resolves.toEqual({
        outcome: { kind: 'scannable' },
        reads: DIRECTORY_READS,
      });
      const { outcome } = await streamedGate(zstd, chunkBytes);
      expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
      expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/^zip member "f.dat": zst/);
    }
  });

  it('does not judge a stored member by bytes that are not its own', async () => {
    // A stored member with a data descriptor whose content holds a plausible local header of its own: the
    // capture ends there, which the directory's size shows is short, so the gate reads the member instead.
    const fakeHeader = rawZip([storedEntry('inner.txt', 'inner')]).subarray(0, 40);
    const member = Buffer.concat([zstdFrame(EICAR).subarray(0, 9), fakeHeader, filler(6000)]);
    const content = rawZip([storedEntry('a.bin', member, { dataDescriptor: true }), storedEntry('b.txt', 'b')]);
    const { outcome, reads } = await streamedGate(content, 64 * 1024);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(reads).toBeGreaterThan(DIRECTORY_READS);
  });

  it('opens a member that is a zip by its content, whatever its name, within maxNestingDepth', async () => {
    let nested = rawZip([deflatedEntry('hello.txt', 'hello')]);
    for (let level = 0; level < limits.maxNestingDepth; level += 1) {
      nested = rawZip([deflatedEntry(`level-${level}.dat`, nested)]);
    }
    await expect(gate(nested)).resolves.toEqual({ kind: 'scannable' });
    const deeper = rawZip([deflatedEntry('data.bin', nested)]);
    await expect(gate(deeper)).resolves.toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });

  it('calls more members than maxJudgedMembers limits-exceeded (clamd reports more than MaxFiles itself)', async () => {
    const entries = Array.from({ length: 51 }, (_, index) => storedEntry(`file-${index}.txt`, `line ${index}\n`));
    const bounded = { ...limits, maxJudgedMembers: 50 };
    await expect(gate(rawZip(entries.slice(0, 50)), bounded)).resolves.toEqual({ kind: 'scannable' });
    const outcome = await gate(rawZip(entries), bounded);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/more than the 50 members/);
    // Directories and empty members are not judged, so they do not count.
    const withFolders = [...entries.slice(0, 50), storedEntry('folder/', ''), storedEntry('empty.txt', '')];
    await expect(gate(rawZip(withFolders), bounded)).resolves.toEqual({ kind: 'scannable' });
  });

  it('judges 5,000 tiny members from the stream in bounded work, without a read per member', async () => {
    const entries = Array.from({ length: 5000 }, (_, index) =>
      index % 2 === 0
        ? storedEntry(`s/${index}.txt`, `stored ${index}\n`)
        : deflatedEntry(`d/${index}.txt`, `deflated ${index}\n`, { dataDescriptor: true }),
    );
    await expect(streamedGate(rawZip(entries), 64 * 1024)).resolves.toEqual({
      outcome: { kind: 'scannable' },
      reads: DIRECTORY_READS,
    });
  });

  it('calls a deflated member that hides its first bytes behind padding limits-exceeded, and one that does not inflate unsupported-format', async () => {
    // Empty stored blocks (5 bytes each, no output) before the zstd stream: inflaters skip them.
    const emptyBlock = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);
    const padded = Buffer.concat([
      Buffer.concat(Array.from({ length: 20_000 }, () => emptyBlock)),
      deflateRawSync(zstdFrame(EICAR)),
    ]);
    const entry: RawZipEntry = { ...deflatedEntry('payload.dat', zstdFrame(EICAR)), payload: padded };
    const outcome = await gate(rawZip([entry]));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    const { outcome: streamedOutcome } = await streamedGate(rawZip(around(entry)), 4096);
    expect(streamedOutcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });

    const corrupt: RawZipEntry = { ...deflatedEntry('data.bin', 'x'), payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) };
    await expect(gate(rawZip([corrupt]))).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('lets members Node cannot decode (bzip2, deflate64, implode) pass unjudged: ClamAV decodes them', async () => {
    for (const method of [6, 9, ZIP_METHOD.bzip2]) {
      await expect(gate(rawZip([{ ...storedEntry('x.bin', zstdFrame(EICAR)), method }]))).resolves.toEqual({
        kind: 'scannable',
      });
    }
  });
});

describe('inflateHead', () => {
  it('gives the first HEAD_BYTES of a deflate stream from a prefix, and sees where the stream ends', () => {
    const text = Buffer.from('some words, '.repeat(2000));
    const compressed = deflateRawSync(text);
    const prefix = inflateHead(compressed.subarray(0, 200), false);
    expect(prefix).not.toBe('corrupt');
    expect(prefix !== 'corrupt' && prefix.ended).toBe(false);
    const whole = inflateHead(Buffer.concat([compressed, Buffer.from('PK\x07\x08 after the stream')]), false);
    expect(whole).toEqual({ head: text.subarray(0, HEAD_BYTES), ended: true });
    const small = inflateHead(Buffer.concat([deflateRawSync('tiny'), Buffer.alloc(30)]), false);
    expect(small).toEqual({ head: Buffer.from('tiny'), ended: true });
  });

  it('bounds a bomb: its head comes out, not what it inflates to', () => {
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024));
    const inflated = inflateHead(bomb, true);
    expect(inflated !== 'corrupt' && inflated.head).toEqual(Buffer.alloc(HEAD_BYTES));
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

/** `entry` alone in a zip whose central directory lists it `copies` times, every entry at the same local header. */
function duplicatedEntryZip(entry: RawZipEntry, copies: number): Buffer {
  const one = rawZip([entry]);
  const eocd = one.length - 22;
  const directoryBytes = one.readUInt32LE(eocd + 12);
  const directoryStart = one.readUInt32LE(eocd + 16);
  const central = one.subarray(directoryStart, directoryStart + directoryBytes);
  const end = Buffer.from(one.subarray(eocd));
  end.writeUInt16LE(copies, 8);
  end.writeUInt16LE(copies, 10);
  end.writeUInt32LE(directoryBytes * copies, 12);
  return Buffer.concat([one.subarray(0, directoryStart), ...Array<Buffer>(copies).fill(central), end]);
}

describe('content gate: central directory entries repeated at one local header', () => {
  // clamd 1.4.6 answers OK for such a zip at once (measured: 64 entries per level, three levels, a 16 MiB
  // leaf: 354 ms); the gate inspected every entry's member again, copies^levels times (64^3 deflated
  // 16 MiB nested zips is an hour of CPU for a 1.3 KB upload).
  it('inspects a member listed many times once, not once per entry (multiplied per nesting level)', async () => {
    let content = rawZip([storedEntry('leaf.txt', 'plain text '.repeat(2000))]);
    for (let level = 0; level < 3; level += 1) content = duplicatedEntryZip(storedEntry('n.zip', content), 8);
    const reader = countingReader(content);
    const outcome = await inspectContent(content.subarray(0, HEAD_BYTES), reader, limits);
    expect(outcome).toEqual({ kind: 'scannable' });
    // One nested zip per level is inspected: a handful of reads each, not 8 + 8^2 + 8^3 inspections.
    expect(reader.reads.length).toBeLessThan(40);
  });
});

describe('content gate: central directory entries repeated at one local header, disagreeing', () => {
  it('calls entries at one local header that declare different sizes unsupported-format', async () => {
    const member = 'plain text '.repeat(2000);
    const zipped = duplicatedEntryZip(storedEntry('a.txt', member), 2);
    // The second central entry (after the first, 46 + name bytes long) declares one byte less.
    const directoryStart = zipped.readUInt32LE(zipped.length - 22 + 16);
    const second = directoryStart + 46 + 'a.txt'.length;
    zipped.writeUInt32LE(member.length - 1, second + 20);
    await expect(inspectContent(zipped.subarray(0, HEAD_BYTES), bufferReader(zipped), limits)).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
  });
});

/**
 * `count` local headers at distinct offsets whose data all start at the same byte: one deflated stream
 * (`compressed`, inflating to `size` bytes) shared by every member. Each header's extra field spans the
 * headers after it. The central directory lists each header once, so nothing repeats an offset.
 */
function overlappingMembersZip(compressed: Buffer, size: number, count: number): Buffer {
  const names = Array.from({ length: count }, (_, i) => `m${String(i).padStart(3, '0')}.zip`);
  const headerBytes = 30 + (names[0] ?? '').length;
  const dataStart = headerBytes * count;
  const locals = names.map((name, i) => {
    const header = Buffer.alloc(headerBytes);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(ZIP_METHOD.deflate, 8);
    header.writeUInt32LE(compressed.length, 18);
    header.writeUInt32LE(size, 22);
    header.writeUInt16LE(name.length, 26);
    header.writeUInt16LE(dataStart - (i * headerBytes + headerBytes), 28);
    header.write(name, 30, 'latin1');
    return header;
  });
  const central = names.map((name, i) => {
    const entry = Buffer.alloc(46 + name.length);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(ZIP_METHOD.deflate, 10);
    entry.writeUInt32LE(compressed.length, 20);
    entry.writeUInt32LE(size, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(i * headerBytes, 42);
    entry.write(name, 46, 'latin1');
    return entry;
  });
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(dataStart + compressed.length, 16);
  return Buffer.concat([...locals, compressed, directory, end]);
}

describe('content gate: one inflation budget per object', () => {
  // Review: members at distinct local headers sharing one deflated nested zip are each inflated and
  // opened; per-member bounds let the work grow with the member count (64 × 16 MiB per level, three
  // levels). What the gate inflates for one object, on every path, is now one total.
  const inner = rawZip([storedEntry('notes.txt', 'plain text\n'.repeat(512 * 93))]);
  const shared = deflateRawSync(inner);

  it('opens each overlapping nested zip while the total stays within the budget', async () => {
    const content = overlappingMembersZip(shared, inner.length, 12);
    await expect(gate(content)).resolves.toEqual({ kind: 'scannable' });
  });

  it('stops with limits-exceeded once the members together inflate more than the budget', async () => {
    const content = overlappingMembersZip(shared, inner.length, 12);
    const budgeted = { ...limits, maxStreamInflateBytes: 4 * inner.length };
    const outcome = await gate(content, budgeted);
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' ? outcome.detail : '').toContain('as much as ClamAV scans');
  });
});
