/**
 * Adversarial review of the content gate through scanObject (the worker's scan path), real clamd 1.4.6 over
 * its unix socket and the local S3 emulator: EICAR where clamd answers OK because it cannot decode the
 * content, placed where the gate's type and central-directory checks did not look.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { deflatedEntry, lzmaEntry, rawZip, storedEntry, tarArchive, zstdFrame } from '../../local/crafted-archives.js';
import { clamdInstream } from '../../local/runtime/clamd.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import { type ClamdScanner, createClamdScanner } from '../../scanner-image/src/clamd-client.js';
import { scanObject } from '../../scanner-image/src/scan-object.js';
import { startHarness, TEST_MAX_OBJECT_BYTES, type WorkerHarness } from './harness.js';

jest.setTimeout(120_000);

const lzmaZip = rawZip([lzmaEntry('eicar.com', EICAR)]);
const lzmaLocalEntryOnly = lzmaZip.subarray(0, lzmaZip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])));
const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
function skippableFrame(bytes: number): Buffer {
  const frame = Buffer.alloc(8 + bytes);
  frame.writeUInt32LE(0x184d2a50, 0);
  frame.writeUInt32LE(bytes, 4);
  return frame;
}
const skippableZstd = Buffer.concat([skippableFrame(16), zstdFrame(EICAR)]);

/** Each measured `stream: OK` with raw INSTREAM, and each was Clean through scanObject before the review. */
const EVASIONS: ReadonlyArray<readonly [string, Buffer]> = [
  ['lzma zip behind 100 bytes of text', rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: Buffer.alloc(100, 0x41) })],
  [
    'lzma zip behind an MZ stub',
    rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)]) }),
  ],
  ['lzma zip behind a PNG', rawZip([lzmaEntry('eicar.com', EICAR)], { prefix: png })],
  [
    'lzma local entry no central directory lists',
    rawZip([storedEntry('a.txt', 'hello\n')], { prefix: lzmaLocalEntryOnly }),
  ],
  ['lzma zip stored in a zip as readme.txt', rawZip([storedEntry('readme.txt', lzmaZip)])],
  ['lzma zip after text inside a gzip', gzipSync(Buffer.concat([Buffer.from('text\n'.repeat(100)), lzmaZip]))],
  ['zstd behind a skippable frame', skippableZstd],
  ['zstd behind a skippable frame in a tar', tarArchive([{ name: 'payload.bin', content: skippableZstd }])],
  // Clean until gzip and tar members of a zip were opened (they were recognised and passed).
  [
    // Larger than the head the worker keeps: the member's data comes from a ranged GetObject.
    'zstd in a tar stored in a zip',
    rawZip([
      storedEntry(
        'data.tar',
        tarArchive([
          { name: 'readme.txt', content: 'plain text\n'.repeat(2000) },
          { name: 'x.zst', content: zstdFrame(EICAR) },
        ]),
      ),
    ]),
  ],
  ['zstd in a gzip deflated in a zip', rawZip([deflatedEntry('payload.gz', gzipSync(zstdFrame(EICAR)))])],
];

/**
 * Clean after the review, when a zip member's content was judged only if its name said "archive"; every
 * member is now judged by its first bytes, whatever its name.
 */
const MEMBER_CONTENT: ReadonlyArray<readonly [string, Buffer]> = [
  ['zstd deflated in a zip as payload.dat', rawZip([deflatedEntry('payload.dat', zstdFrame(EICAR))])],
  ['zstd stored in a zip as payload.dat', rawZip([storedEntry('payload.dat', zstdFrame(EICAR))])],
  ['lzma zip deflated in a zip as readme.txt', rawZip([deflatedEntry('readme.txt', lzmaZip)])],
];

describe('content gate evasions: scanObject, clamd and emulator', () => {
  let h: WorkerHarness;
  let scanner: ClamdScanner;

  beforeAll(async () => {
    h = await startHarness();
    scanner = await createClamdScanner(h.clamd.address);
  });

  afterAll(async () => {
    await h?.stop();
  });

  async function verdictOf(key: string, body: Buffer) {
    const object = await h.put(key, body);
    return scanObject(
      { object },
      { s3: h.clients.s3, scanner },
      { maxObjectBytes: TEST_MAX_OBJECT_BYTES, attempts: 2, backoffMs: 10 },
    );
  }

  test.each([...EVASIONS, ...MEMBER_CONTENT])('with raw INSTREAM clamd answers OK for %s', async (name, body) => {
    expect({ name, reply: await clamdInstream(h.clamd.address, body) }).toEqual({ name, reply: 'stream: OK' });
  });

  test.each(EVASIONS)('%s is Unscannable unsupported-format, not Clean', async (name, body) => {
    const outcome = await verdictOf(`evasion/${name.replace(/\W+/g, '-')}`, body);
    expect(outcome).toMatchObject({
      verdict: { verdict: 'Unscannable', reason: 'unsupported-format' },
      bytesScanned: body.length,
    });
  });

  // Formerly a known false Clean (test.failing): the content of a member named like plain data.
  test.each(MEMBER_CONTENT)('%s is not Clean: Unscannable unsupported-format', async (name, body) => {
    const outcome = await verdictOf(`member-content/${name.replace(/\W+/g, '-')}`, body);
    expect(outcome.verdict.verdict).not.toBe('Clean');
    expect(outcome).toMatchObject({
      verdict: { verdict: 'Unscannable', reason: 'unsupported-format' },
      bytesScanned: body.length,
    });
  });

  test('the plain control: a deflated text member stays Clean', async () => {
    const body = rawZip([deflatedEntry('notes.txt', 'just text\n'.repeat(100))]);
    await expect(verdictOf('control/notes.zip', body)).resolves.toMatchObject({ verdict: { verdict: 'Clean' } });
  });
});
