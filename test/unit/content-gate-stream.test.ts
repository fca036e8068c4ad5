import { gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import {
  deflatedEntry,
  lzmaEntry,
  noise,
  paxPath,
  rawZip,
  storedEntry,
  tarArchive,
  tarHeader,
  zstdFrame,
} from '../../local/crafted-archives.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import { CLAMAV_MAX_FILE_BYTES } from '../../scanner-image/src/config.js';
import {
  type GateLimits,
  type GateOutcome,
  HEAD_BYTES,
  UndecodableLocalHeaderSweep,
} from '../../scanner-image/src/content-gate.js';
import { ContainerStreamInspector, parseTarHeader } from '../../scanner-image/src/content-gate-stream.js';

const MiB = 1024 * 1024;
const limits: GateLimits = {
  maxMemberBytes: CLAMAV_MAX_FILE_BYTES,
  maxDirectoryBytes: 64 * MiB,
  maxNestingDepth: 3,
  maxNestedMembers: 16,
  maxNestedInflateBytes: 16 * MiB,
  maxStreamInflateBytes: 64 * MiB,
  maxLocalHeaderReads: 100,
  maxJudgedMembers: 10_000,
};

/** Feeds `content` in `chunkBytes` pieces, one write at a time as the worker's tap does. */
async function streamed(content: Buffer, gateLimits = limits, chunkBytes = 64 * 1024): Promise<GateOutcome> {
  const inspector = new ContainerStreamInspector(gateLimits);
  for (let at = 0; at < content.length; at += chunkBytes) {
    await inspector.write(content.subarray(at, at + chunkBytes));
  }
  return inspector.end();
}

const lzmaZip = rawZip([lzmaEntry('eicar.com', EICAR)]);
const text = (lines: number): string => 'nothing to see here, just text\n'.repeat(lines);

describe('content gate, streaming: what tar and gzip carry', () => {
  it('calls a tar holding a .zst unsupported-format, naming the member', async () => {
    const outcome = await streamed(
      tarArchive([
        { name: 'docs/readme.txt', content: text(10) },
        { name: 'payload/eicar.zst', content: zstdFrame(EICAR) },
      ]),
    );
    expect(outcome).toEqual({
      kind: 'unscannable',
      reason: 'unsupported-format',
      detail: 'tar member "payload/eicar.zst": zst (application/zstd) is a format ClamAV does not unpack',
    });
  });

  it('calls a tar.gz holding an LZMA zip unsupported-format (the zip is buffered and its directory read)', async () => {
    const outcome = await streamed(gzipSync(tarArchive([{ name: 'a.zip', content: lzmaZip }])));
    expect(outcome).toEqual({
      kind: 'unscannable',
      reason: 'unsupported-format',
      detail:
        'gzip content: tar member "a.zip": zip member "eicar.com" uses compression method 14 (LZMA), which ClamAV does not decode',
    });
  });

  it('calls a gz holding a .zst unsupported-format, and a gz in a gz holding one', async () => {
    const outcome = await streamed(gzipSync(zstdFrame(EICAR)));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/^gzip content: zst /);
    const twice = await streamed(gzipSync(gzipSync(zstdFrame(EICAR))));
    expect(twice.kind === 'unscannable' && twice.detail).toMatch(/^gzip content: gzip content: zst /);
  });

  it('reads every member of a multi-member gzip', async () => {
    const outcome = await streamed(Buffer.concat([gzipSync(text(1000)), gzipSync(zstdFrame(EICAR))]), limits, 100);
    // One gzip stream: its payload starts as text, which decides it (as ClamAV sees one file too).
    expect(outcome).toEqual({ kind: 'scannable' });
    const tarInTwo = tarArchive([
      { name: 'a.txt', content: text(10) },
      { name: 'b.zst', content: zstdFrame(EICAR) },
    ]);
    const split = Buffer.concat([gzipSync(tarInTwo.subarray(0, 1000)), gzipSync(tarInTwo.subarray(1000))]);
    await expect(streamed(split)).resolves.toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
  });

  it('lets a tar.gz of plain text files and a deflated zip pass', async () => {
    const content = gzipSync(
      tarArchive([
        { name: 'dir/', content: '', type: '5' },
        { name: 'dir/a.txt', content: text(2000) },
        { name: 'dir/empty.txt', content: '' },
        { name: 'dir/b.zip', content: rawZip([deflatedEntry('x.txt', text(500)), storedEntry('y.txt', 'y')]) },
        { name: 'dir/c.bin', content: noise(300_000) },
      ]),
    );
    for (const chunkBytes of [511, 4096, 64 * 1024]) {
      await expect(streamed(content, limits, chunkBytes)).resolves.toEqual({ kind: 'scannable' });
    }
    // One byte at a time: headers, heads and the zip cut everywhere.
    const small = gzipSync(
      tarArchive([
        { name: 'a.txt', content: text(200) },
        { name: 'b.zip', content: rawZip([deflatedEntry('x.txt', text(50))]) },
      ]),
    );
    await expect(streamed(small, limits, 1)).resolves.toEqual({ kind: 'scannable' });
    const smallLzma = gzipSync(
      tarArchive([
        { name: 'a.txt', content: text(200) },
        { name: 'b.zip', content: lzmaZip },
      ]),
    );
    await expect(streamed(smallLzma, limits, 1)).resolves.toMatchObject({ reason: 'unsupported-format' });
  });

  it('reads member names from pax and GNU long-name records', async () => {
    const long = `${'deep/'.repeat(30)}eicar.zst`;
    const pax = await streamed(tarArchive([paxPath(long), { name: 'short.zst', content: zstdFrame(EICAR) }]));
    expect(pax.kind === 'unscannable' && pax.detail).toContain(`tar member "${long}"`);
    const gnu = await streamed(
      tarArchive([
        { name: '././@LongLink', content: `${long}\0`, type: 'L' },
        { name: 'short.zst', content: zstdFrame(EICAR) },
      ]),
    );
    expect(gnu.kind === 'unscannable' && gnu.detail).toContain(`tar member "${long}"`);
    const header = tarHeader('name.txt', 3);
    expect(parseTarHeader(header)).toEqual({ name: 'name.txt', size: 3, type: '0' });
  });

  it('calls a zip inside a tar above maxNestedInflateBytes limits-exceeded (it is not buffered)', async () => {
    const bigZip = rawZip([deflatedEntry('big.bin', noise(20 * MiB))]);
    expect(bigZip.length).toBeGreaterThan(limits.maxNestedInflateBytes);
    const outcome = await streamed(tarArchive([{ name: 'big.zip', content: bigZip }]));
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/^tar member "big.zip": a zip of \d+ bytes/);
    // In a gzip the zip's size is not declared: it is counted as it inflates.
    const inGzip = await streamed(gzipSync(bigZip, { level: 1 }));
    expect(inGzip).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
  });

  it('calls a gzip that inflates beyond maxStreamInflateBytes limits-exceeded, without inflating the rest', async () => {
    const bomb = gzipSync(Buffer.alloc(8 * MiB));
    const outcome = await streamed(bomb, { ...limits, maxStreamInflateBytes: MiB });
    expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(outcome.kind === 'unscannable' && outcome.detail).toContain('MaxScanSize');
  });

  it('calls a corrupt or truncated gzip, and a tar with a bad header, unsupported-format', async () => {
    const good = gzipSync(Buffer.concat([Buffer.from(text(100)), noise(50_000)]));
    const corrupt = Buffer.from(good);
    corrupt.fill(0xff, 200, 260);
    const corruptOutcome = await streamed(corrupt);
    expect(corruptOutcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(corruptOutcome.kind === 'unscannable' && corruptOutcome.detail).toMatch(/^gzip stream does not inflate/);
    await expect(streamed(good.subarray(0, good.length - 100))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    await expect(streamed(Buffer.concat([good, Buffer.from('trailing garbage')]))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    // Zero padding after the gzip stream (as tape-blocked writers leave) is not content.
    await expect(streamed(Buffer.concat([good, Buffer.alloc(4096)]))).resolves.toEqual({ kind: 'scannable' });

    const tar = tarArchive([
      { name: 'a.txt', content: text(10) },
      { name: 'b.txt', content: text(10) },
    ]);
    const badHeader = Buffer.from(tar);
    badHeader.write('garbage', 512 + 512 + 10, 'latin1');
    const bad = await streamed(badHeader);
    expect(bad).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
    expect(bad.kind === 'unscannable' && bad.detail).toMatch(/^tar header after 1024 bytes fails its checksum/);
    await expect(streamed(tar.subarray(0, 1000 + 512))).resolves.toMatchObject({
      kind: 'unscannable',
      reason: 'unsupported-format',
    });
    // Without its end blocks but cut at an entry boundary: every entry is whole.
    await expect(streamed(tar.subarray(0, 2048))).resolves.toEqual({ kind: 'scannable' });
  });

  it('goes maxNestingDepth levels down; a container deeper is limits-exceeded, a plain member there passes', async () => {
    // gzip (depth 0) → tar (1) → gzip (2) → tar (3): members at depth 4.
    const nest = (inner: Buffer) =>
      gzipSync(tarArchive([{ name: 'l1.tar.gz', content: gzipSync(tarArchive([{ name: 'leaf', content: inner }])) }]));
    await expect(streamed(nest(Buffer.from(text(10))))).resolves.toEqual({ kind: 'scannable' });
    const deeper = await streamed(nest(gzipSync(text(10))));
    expect(deeper).toMatchObject({ kind: 'unscannable', reason: 'limits-exceeded' });
    expect(deeper.kind === 'unscannable' && deeper.detail).toContain('levels deep');
    // An unsupported format deeper than that is still named for what it is.
    await expect(streamed(nest(zstdFrame(EICAR)))).resolves.toMatchObject({ reason: 'unsupported-format' });
  });

  it('leaves objects that are not gzip or tar to inspectContent', async () => {
    for (const content of [
      lzmaZip,
      zstdFrame(EICAR),
      Buffer.from(text(1000)),
      noise(HEAD_BYTES * 3),
      Buffer.alloc(0),
    ]) {
      await expect(streamed(content)).resolves.toEqual({ kind: 'scannable' });
    }
  });

  it('stops when abandoned, and then concludes nothing', async () => {
    const inspector = new ContainerStreamInspector(limits);
    await inspector.write(gzipSync(noise(1 * MiB)).subarray(0, 100_000));
    inspector.abort();
    await inspector.write(Buffer.from('more'));
    // Half an object says nothing: never scannable.
    await expect(inspector.end()).rejects.toThrow('abandoned');
  });
});

/** The local header and data of one zip entry, with no central directory listing it. */
function localEntryOnly(zip: Buffer): Buffer {
  return zip.subarray(0, zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])));
}

/** Feeds `content` to a sweep in `chunkBytes` pieces, as the worker's tap does. */
function swept(content: Buffer, chunkBytes: number): string | undefined {
  const sweep = new UndecodableLocalHeaderSweep();
  for (let at = 0; at < content.length; at += chunkBytes) sweep.push(content.subarray(at, at + chunkBytes));
  return sweep.found;
}

describe('content gate: zip local headers wherever they are', () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
  it.each([
    ['behind 100 bytes of text', rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: Buffer.alloc(100, 0x41) })],
    [
      'behind an MZ stub (self-extractor)',
      rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)]) }),
    ],
    ['behind a PNG', rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: png })],
    [
      'missing from the central directory',
      rawZip([storedEntry('a.txt', 'hello\n')], { prefix: localEntryOnly(lzmaZip) }),
    ],
    ['appended to a gzip', Buffer.concat([gzipSync(text(100)), lzmaZip])],
    ['stored as a member named readme.txt', rawZip([storedEntry('readme.txt', lzmaZip)])],
  ])('the sweep finds an LZMA member %s (ClamAV finds that zip and answers OK)', (_where, content) => {
    for (const chunkBytes of [1, 7, 64 * 1024]) {
      expect(swept(content, chunkBytes)).toMatch(/method 14 \(LZMA\), which ClamAV does not decode/);
    }
  });

  it('calls an LZMA zip after text inside a gzip unsupported-format while streaming', async () => {
    for (const chunkBytes of [1, 64 * 1024]) {
      const outcome = await streamed(gzipSync(Buffer.concat([Buffer.from(text(100)), lzmaZip])), limits, chunkBytes);
      expect(outcome).toMatchObject({ kind: 'unscannable', reason: 'unsupported-format' });
      expect(outcome.kind === 'unscannable' && outcome.detail).toMatch(/^gzip content: .*method 14 \(LZMA\)/);
    }
  });

  it('does not take the signature inside random bytes, nor stored and deflated members, for such a header', async () => {
    const signature = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
    const randomHits = Buffer.concat(
      Array.from({ length: 200 }, (_, index) => Buffer.concat([noise(64, index + 1), signature])),
    );
    expect(swept(randomHits, 7)).toBeUndefined();
    const ordinary = rawZip([
      storedEntry('a.txt', text(5)),
      deflatedEntry('b.txt', text(50)),
      storedEntry('inner.zip', rawZip([deflatedEntry('c.txt', 'c')])),
    ]);
    expect(swept(ordinary, 7)).toBeUndefined();
    expect(await streamed(gzipSync(ordinary))).toEqual({ kind: 'scannable' });
  });
});
