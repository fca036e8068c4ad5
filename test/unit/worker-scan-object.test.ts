import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AccessDeniedError,
  ObjectNotFoundError,
  ObjectReadError,
  ScannerUnavailableError,
} from '../../functions/commons/errors.js';
import { deflatedEntry, lzmaEntry, rawZip, storedEntry } from '../../local/crafted-archives.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import { type ClamdScanner, type ClamdScanReply, ClamdUnavailableError } from '../../scanner-image/src/clamd-client.js';
import { scanObject } from '../../scanner-image/src/scan-object.js';

const object = { bucket: 'staging-bucket', key: 'in/file.txt', versionId: 'v1', etag: '"abc"' };
const options = { maxObjectBytes: 1000, attempts: 3, backoffMs: 1 };

/** A clamd stand-in: consumes the body like clamd would and answers what the test scripts. */
function fakeScanner(replies: Array<(bytes: number) => ClamdScanReply | Error>): ClamdScanner & { scans: number } {
  const scanner = {
    scans: 0,
    async scan(body: Readable): Promise<ClamdScanReply> {
      let bytes = 0;
      for await (const chunk of body) bytes += (chunk as Buffer).length;
      const reply = replies[Math.min(scanner.scans, replies.length - 1)];
      scanner.scans += 1;
      const result = reply ? reply(bytes) : new Error('no reply scripted');
      if (result instanceof Error) throw result;
      return result;
    },
    async version() {
      return 'ClamAV 1.4.6';
    },
    async ping() {},
  };
  return scanner;
}

function s3Error(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

/** What GetObject's Body is at runtime in Node: a Readable (the SDK's mixin methods are not used). */
function body(bytes: number): GetObjectCommandOutput['Body'] {
  return Readable.from([Buffer.alloc(bytes, 0x61)]) as unknown as GetObjectCommandOutput['Body'];
}

function bodyOf(content: Buffer): GetObjectCommandOutput['Body'] {
  return Readable.from([content]) as unknown as GetObjectCommandOutput['Body'];
}

/** GetObject over `content`: the whole object, or the `bytes=a-b` range asked for. */
function serve(content: Buffer) {
  return (input: { Range?: string }) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
    const part = range ? content.subarray(Number(range[1]), Number(range[2]) + 1) : content;
    return { Body: bodyOf(part), ContentLength: part.length };
  };
}

describe('scanObject', () => {
  const s3 = mockClient(S3Client);
  const client = new S3Client({ region: 'us-east-1' });
  beforeEach(() => {
    s3.reset();
  });

  it('streams the exact version, conditional on the ETag, into clamd', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).resolves({ Body: body(10) });
    const scanner = fakeScanner([(bytes) => ({ reply: 'stream: OK\0', bytes, complete: true })]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toEqual({
      verdict: { verdict: 'Clean' },
      bytesScanned: 10,
      objectSize: 10,
    });
    const expected = { Bucket: 'staging-bucket', Key: 'in/file.txt', VersionId: 'v1', IfMatch: '"abc"' };
    expect(s3.commandCalls(HeadObjectCommand)[0]?.args[0].input).toEqual(expected);
    expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual(expected);
  });

  it('decides too-large from HeadObject without downloading', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 1001 });
    const scanner = fakeScanner([]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toEqual({
      verdict: { verdict: 'Unscannable', reason: 'too-large' },
      bytesScanned: 0,
      objectSize: 1001,
    });
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(scanner.scans).toBe(0);
  });

  it("lets a job's maxSizeBytes lower the limit, never raise it", async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 500 });
    const scanner = fakeScanner([]);
    const lowered = await scanObject({ object, settings: { maxSizeBytes: 100 } }, { s3: client, scanner }, options);
    expect(lowered.verdict).toEqual({ verdict: 'Unscannable', reason: 'too-large' });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 2000 });
    const raised = await scanObject({ object, settings: { maxSizeBytes: 5000 } }, { s3: client, scanner }, options);
    expect(raised.verdict).toEqual({ verdict: 'Unscannable', reason: 'too-large' });
  });

  it('reports SSE-C objects as Unscannable unsupported-encryption (HeadObject 400, or the algorithm header)', async () => {
    const scanner = fakeScanner([]);
    s3.on(HeadObjectCommand).rejects(s3Error('BadRequest', 400));
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toMatchObject({
      verdict: { verdict: 'Unscannable', reason: 'unsupported-encryption' },
    });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, SSECustomerAlgorithm: 'AES256' });
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toMatchObject({
      verdict: { verdict: 'Unscannable', reason: 'unsupported-encryption' },
    });
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
  });

  it.each([
    ['NotFound', 404, ObjectNotFoundError],
    ['NoSuchVersion', 404, ObjectNotFoundError],
    ['PreconditionFailed', 412, ObjectNotFoundError],
    ['AccessDenied', 403, AccessDeniedError],
  ])('maps HeadObject %s (%i) to %p', async (name, status, expected) => {
    s3.on(HeadObjectCommand).rejects(s3Error(name, status));
    await expect(scanObject({ object }, { s3: client, scanner: fakeScanner([]) }, options)).rejects.toBeInstanceOf(
      expected,
    );
  });

  it('an object deleted between HeadObject and GetObject is ObjectNotFoundError', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    await expect(scanObject({ object }, { s3: client, scanner: fakeScanner([]) }, options)).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
  });

  it('never calls a short download Clean: retries, then ObjectReadError (S3, not clamd, failed)', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(6) }));
    const scanner = fakeScanner([(bytes) => ({ reply: 'stream: OK', bytes, complete: true })]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).rejects.toBeInstanceOf(ObjectReadError);
    expect(scanner.scans).toBe(3);
  });

  it('never calls an OK that came before the end of the stream Clean: retries, then ObjectReadError', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(10) }));
    const scanner = fakeScanner([(bytes) => ({ reply: 'stream: OK', bytes, complete: false })]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).rejects.toBeInstanceOf(ObjectReadError);
    expect(scanner.scans).toBe(3);
  });

  it('keeps a detection found in a short download', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(6) }));
    const scanner = fakeScanner([(bytes) => ({ reply: 'stream: Eicar FOUND', bytes, complete: true })]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toMatchObject({
      verdict: { verdict: 'Infected', signature: 'Eicar' },
    });
  });

  it('retries clamd outages and ERROR replies with a fresh download, then succeeds', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(10) }));
    const scanner = fakeScanner([
      () => new ClamdUnavailableError('ECONNREFUSED'),
      (bytes) => ({ reply: "stream: Can't allocate memory ERROR", bytes, complete: true }),
      (bytes) => ({ reply: 'stream: OK', bytes, complete: true }),
    ]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toMatchObject({
      verdict: { verdict: 'Clean' },
    });
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(3);
  });

  it('gives up with ScannerUnavailableError when clamd stays down', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(10) }));
    const scanner = fakeScanner([() => new ClamdUnavailableError('ECONNREFUSED')]);
    const scanning = scanObject({ object }, { s3: client, scanner }, options);
    await expect(scanning).rejects.toBeInstanceOf(ScannerUnavailableError);
    await expect(scanning).rejects.toThrow(/no verdict after 3 attempts: ECONNREFUSED/);
  });

  it('asks scannerReady before every try, and what it throws ends the scan without another download', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(10) }));
    const scanner = fakeScanner([() => new ClamdUnavailableError('ECONNRESET')]);
    let asked = 0;
    const scannerReady = async (): Promise<void> => {
      asked += 1;
      if (asked > 1) throw new ScannerUnavailableError('clamd did not answer PING for 60000 ms');
    };
    const scanning = scanObject({ object }, { s3: client, scanner }, { ...options, scannerReady });
    await expect(scanning).rejects.toThrow(new ScannerUnavailableError('clamd did not answer PING for 60000 ms'));
    expect(asked).toBe(2);
    expect(scanner.scans).toBe(1);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
  });

  it('gives up with ObjectReadError when S3 keeps failing the download', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectCommand).rejects(s3Error('SlowDown', 503));
    const scanning = scanObject({ object }, { s3: client, scanner: fakeScanner([]) }, options);
    await expect(scanning).rejects.toBeInstanceOf(ObjectReadError);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(3);
  });

  it('trusts the size pinned by start-scan: too-large without any S3 call', async () => {
    const scanner = fakeScanner([]);
    await expect(scanObject({ object: { ...object, size: 5000 } }, { s3: client, scanner }, options)).resolves.toEqual({
      verdict: { verdict: 'Unscannable', reason: 'too-large' },
      bytesScanned: 0,
      objectSize: 5000,
    });
    expect(s3.calls()).toHaveLength(0);
  });

  it('with a pinned size, goes straight to GetObject (no second HeadObject)', async () => {
    s3.on(GetObjectCommand).resolves({ Body: body(10), ContentLength: 10 });
    const scanner = fakeScanner([(bytes) => ({ reply: 'stream: OK', bytes, complete: true })]);
    await expect(
      scanObject({ object: { ...object, size: 10 } }, { s3: client, scanner }, options),
    ).resolves.toMatchObject({ verdict: { verdict: 'Clean' }, bytesScanned: 10 });
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });

  it("lets GetObject's own length overrule a wrong pinned size, and never scans past the limit", async () => {
    s3.on(GetObjectCommand).resolves({ Body: body(10), ContentLength: 2000 });
    const scanner = fakeScanner([]);
    await expect(
      scanObject({ object: { ...object, size: 10 } }, { s3: client, scanner }, options),
    ).resolves.toMatchObject({ verdict: { verdict: 'Unscannable', reason: 'too-large' }, objectSize: 2000 });
    expect(scanner.scans).toBe(0);
  });

  it('maps a GetObject 400 (SSE-C object requested without its key) to unsupported-encryption', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('BadRequest', 400));
    await expect(
      scanObject({ object: { ...object, size: 10 } }, { s3: client, scanner: fakeScanner([]) }, options),
    ).resolves.toMatchObject({ verdict: { verdict: 'Unscannable', reason: 'unsupported-encryption' } });
  });

  it.each([
    ['no version id (unversioned bucket)', undefined],
    ['the null version (versioning suspended)', 'null'],
  ])('refuses an object with %s: Error unversioned-bucket, without any S3 call or scan', async (_what, versionId) => {
    const unversioned = { bucket: object.bucket, key: object.key, etag: object.etag, size: 10, versionId };
    const scanner = fakeScanner([]);
    await expect(scanObject({ object: unversioned }, { s3: client, scanner }, options)).resolves.toMatchObject({
      verdict: { verdict: 'Error', reason: 'unversioned-bucket' },
      bytesScanned: 0,
    });
    expect(s3.calls()).toHaveLength(0);
    expect(scanner.scans).toBe(0);
  });

  it('scans nothing for an empty object and calls it Clean', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 0 });
    const scanner = fakeScanner([]);
    await expect(scanObject({ object }, { s3: client, scanner }, options)).resolves.toEqual({
      verdict: { verdict: 'Clean' },
      bytesScanned: 0,
      objectSize: 0,
    });
  });

  describe('content gate after clamd answers OK', () => {
    const lzmaZip = rawZip([lzmaEntry('eicar.com', EICAR)]);
    /** Bigger than the head the worker keeps, with the LZMA member at the end: the gate must read the tail. */
    const largeLzmaZip = rawZip([
      storedEntry('padding.bin', Buffer.alloc(50_000, 0x61)),
      lzmaEntry('eicar.com', EICAR),
    ]);
    const ok = (bytes: number): ClamdScanReply => ({ reply: 'stream: OK', bytes, complete: true });

    it('turns OK for a zip with an LZMA member into Unscannable unsupported-format (small: no second request)', async () => {
      s3.on(GetObjectCommand).callsFake(serve(lzmaZip));
      const outcome = await scanObject(
        { object: { ...object, size: lzmaZip.length } },
        { s3: client, scanner: fakeScanner([ok]) },
        options,
      );
      expect(outcome).toMatchObject({
        verdict: { verdict: 'Unscannable', reason: 'unsupported-format' },
        bytesScanned: lzmaZip.length,
        objectSize: lzmaZip.length,
      });
      expect(outcome.detail).toContain('method 14 (LZMA)');
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
    });

    it('reads the rest with ranged GetObjects of the same version, conditional on the same ETag', async () => {
      s3.on(GetObjectCommand).callsFake(serve(largeLzmaZip));
      const outcome = await scanObject(
        { object: { ...object, size: largeLzmaZip.length } },
        { s3: client, scanner: fakeScanner([ok]) },
        { ...options, maxObjectBytes: 1_000_000 },
      );
      expect(outcome.verdict).toEqual({ verdict: 'Unscannable', reason: 'unsupported-format' });
      const ranged = s3
        .commandCalls(GetObjectCommand)
        .map((call) => call.args[0].input)
        .filter((input) => input.Range !== undefined);
      // The end record, the directory's first bytes, the directory: local headers came from the stream.
      expect(ranged).toHaveLength(3);
      for (const input of ranged) {
        expect(input).toMatchObject({
          Bucket: 'staging-bucket',
          Key: 'in/file.txt',
          VersionId: 'v1',
          IfMatch: '"abc"',
        });
        expect(input.Range).toMatch(/^bytes=\d+-\d+$/);
      }
    });

    it('keeps Clean for an ordinary zip and for text', async () => {
      const zip = rawZip([deflatedEntry('notes.txt', 'nothing to see '.repeat(500))]);
      s3.on(GetObjectCommand).callsFake(serve(zip));
      await expect(
        scanObject({ object: { ...object, size: zip.length } }, { s3: client, scanner: fakeScanner([ok]) }, options),
      ).resolves.toEqual({ verdict: { verdict: 'Clean' }, bytesScanned: zip.length, objectSize: zip.length });
    });

    it("lets clamd's findings stand: an Infected reply is not re-examined", async () => {
      s3.on(GetObjectCommand).callsFake(serve(largeLzmaZip));
      const scanner = fakeScanner([(bytes) => ({ reply: 'stream: Eicar FOUND', bytes, complete: true })]);
      await expect(
        scanObject(
          { object: { ...object, size: largeLzmaZip.length } },
          { s3: client, scanner },
          { ...options, maxObjectBytes: 1_000_000 },
        ),
      ).resolves.toMatchObject({ verdict: { verdict: 'Infected', signature: 'Eicar' } });
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
    });

    it('retries when a ranged read fails, then gives up with ObjectReadError: never Clean', async () => {
      s3.on(GetObjectCommand).callsFake((input: { Range?: string }) => {
        if (input.Range) throw s3Error('SlowDown', 503);
        return serve(largeLzmaZip)(input);
      });
      const scanner = fakeScanner([ok]);
      await expect(
        scanObject(
          { object: { ...object, size: largeLzmaZip.length } },
          { s3: client, scanner },
          { ...options, maxObjectBytes: 1_000_000 },
        ),
      ).rejects.toBeInstanceOf(ObjectReadError);
      expect(scanner.scans).toBe(3);
    });

    it('retries a ranged read that returns fewer bytes than asked', async () => {
      let shortAnswers = 1;
      s3.on(GetObjectCommand).callsFake((input: { Range?: string }) => {
        const answer = serve(largeLzmaZip)(input);
        if (!input.Range || shortAnswers === 0) return answer;
        shortAnswers -= 1;
        return { Body: bodyOf(Buffer.from('short')), ContentLength: 5 };
      });
      const scanner = fakeScanner([ok]);
      await expect(
        scanObject(
          { object: { ...object, size: largeLzmaZip.length } },
          { s3: client, scanner },
          { ...options, maxObjectBytes: 1_000_000 },
        ),
      ).resolves.toMatchObject({ verdict: { verdict: 'Unscannable', reason: 'unsupported-format' } });
      expect(scanner.scans).toBe(2);
    });

    it('passes a download that breaks off on to clamd as an error, retried like before the gate existed', async () => {
      s3.on(GetObjectCommand).callsFake(() => {
        async function* breaking(): AsyncGenerator<Buffer> {
          yield Buffer.alloc(5, 0x61);
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        }
        return { Body: Readable.from(breaking()) as unknown as GetObjectCommandOutput['Body'], ContentLength: 10 };
      });
      const scanner = fakeScanner([ok]);
      const scanning = scanObject({ object: { ...object, size: 10 } }, { s3: client, scanner }, options);
      await expect(scanning).rejects.toBeInstanceOf(ObjectReadError);
      await expect(scanning).rejects.toThrow(/socket hang up/);
    });

    it('an object replaced before a ranged read (412) is ObjectNotFoundError', async () => {
      s3.on(GetObjectCommand).callsFake((input: { Range?: string }) => {
        if (input.Range) throw s3Error('PreconditionFailed', 412);
        return serve(largeLzmaZip)(input);
      });
      await expect(
        scanObject(
          { object: { ...object, size: largeLzmaZip.length } },
          { s3: client, scanner: fakeScanner([ok]) },
          { ...options, maxObjectBytes: 1_000_000 },
        ),
      ).rejects.toBeInstanceOf(ObjectNotFoundError);
    });
  });
});
