/**
 * The content gate's streaming half through the real worker, clamd 1.4.6 and the local AWS emulator: EICAR
 * hidden in formats clamd does not unpack, delivered inside tar and gzip.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { createS3Client, createSfnClient, createSqsClient } from '../../functions/commons/clients.js';
import { deflatedEntry, lzmaEntry, rawZip, tarArchive, zstdFrame } from '../../local/crafted-archives.js';
import { clamdInstream } from '../../local/runtime/clamd.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import { silentLogger } from '../../scanner-image/src/log.js';
import { type RunningWorker, startWorker } from '../../scanner-image/src/worker.js';
import { REGION, startHarness, TEST_MAX_OBJECT_BYTES, type WorkerHarness } from './harness.js';

jest.setTimeout(120_000);

const text = (lines: number): string => 'nothing to see here, just text\n'.repeat(lines);

/** Measured with raw INSTREAM: clamd answers `stream: OK` for each (it unpacks the tar/gzip, not what is inside). */
const HIDDEN_IN_CONTAINERS: ReadonlyArray<{ readonly key: string; readonly body: Buffer }> = [
  {
    key: 'gate/zst-in.tar',
    body: tarArchive([
      { name: 'readme.txt', content: text(20) },
      { name: 'payload/eicar.zst', content: zstdFrame(EICAR) },
    ]),
  },
  {
    key: 'gate/lzma-zip-in.tar.gz',
    body: gzipSync(tarArchive([{ name: 'bundle/a.zip', content: rawZip([lzmaEntry('eicar.com', EICAR)]) }])),
  },
  { key: 'gate/eicar.zst.gz', body: gzipSync(zstdFrame(EICAR)) },
];

describe('the content gate opens tar and gzip: real worker, clamd and emulator', () => {
  let h: WorkerHarness;
  let worker: RunningWorker;

  beforeAll(async () => {
    h = await startHarness();
    const options = { endpoint: h.moto.endpoint, region: REGION };
    worker = await startWorker(
      {
        queueUrl: h.queueUrl,
        clamd: h.clamd.address,
        concurrency: 2,
        maxObjectBytes: TEST_MAX_OBJECT_BYTES,
        heartbeatIntervalMs: 20_000,
        metrics: { enabled: false, namespace: 'ScanflowGateContainersTest', dimensions: [] },
        shutdownGraceMs: 20_000,
      },
      {
        s3: createS3Client({ ...options, forcePathStyle: true }),
        sqs: createSqsClient(options),
        sfn: createSfnClient(options),
        log: silentLogger,
      },
      { pollWaitSeconds: 1, scanBackoffMs: 100, metricsFlushIntervalMs: 3_600_000 },
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await h?.stop();
  });

  test('with raw INSTREAM, clamd answers OK for each carrier: it unpacks the tar/gzip but not what they hold', async () => {
    for (const { key, body } of HIDDEN_IN_CONTAINERS) {
      expect({ key, reply: await clamdInstream(h.clamd.address, body) }).toEqual({ key, reply: 'stream: OK' });
    }
  });

  test.each(HIDDEN_IN_CONTAINERS.map((fixture) => [fixture.key, fixture.body] as const))(
    '%s is Unscannable unsupported-format through the worker, not Clean',
    async (key, body) => {
      const end = await h.waitForEnd(await h.startScan(await h.put(key, body)));
      expect(end).toMatchObject({
        status: 'SUCCEEDED',
        output: { verdict: 'Unscannable', reason: 'unsupported-format', bytesScanned: body.length },
      });
    },
  );

  test('a .tar.gz with EICAR as a plain member stays Infected (clamd finds it; the gate is not asked)', async () => {
    const body = gzipSync(
      tarArchive([
        { name: 'readme.txt', content: text(20) },
        { name: 'eicar.com', content: EICAR },
      ]),
    );
    expect(await clamdInstream(h.clamd.address, body)).toMatch(/FOUND$/);
    const end = await h.waitForEnd(await h.startScan(await h.put('gate/plain-eicar.tar.gz', body)));
    expect(end.output).toMatchObject({ verdict: 'Infected' });
    expect(end.output?.signature).toContain('EICAR');
  });

  test('a .tar.gz of clean text (and a deflated zip) stays Clean', async () => {
    const body = gzipSync(
      tarArchive([
        { name: 'docs/', content: '', type: '5' },
        { name: 'docs/notes.txt', content: text(3000) },
        { name: 'docs/more.txt', content: text(500) },
        { name: 'docs/archive.zip', content: rawZip([deflatedEntry('inner.txt', text(200))]) },
      ]),
    );
    const end = await h.waitForEnd(await h.startScan(await h.put('gate/clean.tar.gz', body)));
    expect(end.output).toMatchObject({ verdict: 'Clean', bytesScanned: body.length });
  });
});
