/**
 * clamd's limits against a real clamd. Each test starts a clamd of its own with the limits it exercises
 * (derived from scanner-image/clamd.conf by localClamdConf, as every local clamd is).
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { type ClamdServer, startClamd } from '../../local/runtime/clamd.js';
import { zip } from '../../local/samples.js';
import { SECONDARY_PASS_MARKERS, TEST_SIGNATURES } from '../../scanner-image/signatures/generate.js';
import { createClamdScanner } from '../../scanner-image/src/clamd-client.js';
import { mapClamdReply } from '../../scanner-image/src/clamd-reply.js';
import { silentLogger } from '../../scanner-image/src/log.js';
import { startWorker } from '../../scanner-image/src/worker.js';
import {
  FAST_TUNING,
  startClamdProxy,
  startHarness,
  TEST_CLAMD_LIMITS,
  type WorkerHarness,
  workerClients,
  workerConfig,
} from './harness.js';

jest.setTimeout(180_000);

const MiB = 1024 * 1024;
const NO_METRICS = { enabled: false, namespace: 'x', dimensions: [] };

/** `<p>` lines of text up to about `size` bytes, then `marker` in the last paragraph. */
function html(size: number, marker: string): Buffer {
  const line = '<p>lorem ipsum dolor sit amet consectetur</p>\n';
  const lines = Math.max(0, Math.floor((size - 100) / line.length));
  return Buffer.from(`<html><body>\n${line.repeat(lines)}<p>${marker}</p></body></html>\n`, 'ascii');
}

/** `body` in 1 MiB pieces, as a download arrives. */
function* pieces(body: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < body.length; offset += MiB) yield body.subarray(offset, offset + MiB);
}

/** `size` bytes of zeros ending with `tail`, without holding them in memory. */
function* zerosThen(size: number, tail: Buffer): Generator<Buffer> {
  const zeros = Buffer.alloc(MiB);
  let left = size - tail.length;
  while (left > 0) {
    const n = Math.min(left, MiB);
    yield zeros.subarray(0, n);
    left -= n;
  }
  yield tail;
}

/** JavaScript-like text of about `size` bytes with `marker` in its last line. */
function script(size: number, marker: string): Buffer {
  const line = 'var lorem = "ipsum dolor sit amet consectetur";\n';
  return Buffer.from(`${line.repeat(Math.floor((size - 64) / line.length))}var m = "${marker}";\n`, 'ascii');
}

describe('clamd limits through the worker', () => {
  let h: WorkerHarness;
  const ownClamds: ClamdServer[] = [];

  beforeAll(async () => {
    h = await startHarness();
  });

  afterAll(async () => {
    await Promise.allSettled(ownClamds.map((c) => c.stop()));
    await h?.stop();
  });

  /** Runs one object through a worker of its own on `clamd` (default: the harness's), returns the execution's end. */
  async function scanThrough(
    name: string,
    object: Awaited<ReturnType<WorkerHarness['put']>>,
    options: { clamd: ClamdServer['address'] },
  ) {
    const queueUrl = await h.createQueue(`${name}-jobs`);
    const machine = await h.createStateMachine(name, { queueUrl });
    const config = workerConfig(h, {
      queueUrl,
      clamd: options.clamd,
      metrics: NO_METRICS,
    });
    const worker = await startWorker(config, { ...workerClients(h), log: silentLogger }, FAST_TUNING);
    try {
      return await h.waitForEnd(await h.startScan(object, machine), 150_000);
    } finally {
      await worker.stop();
    }
  }

  test('a scan longer than MaxScanTime ends Unscannable limits-exceeded once: one INSTREAM session, no retry', async () => {
    // 50 ms: a 5000-member zip takes ~0.4 s to scan on an idle machine, so a busier one only makes it surer.
    const clamd = await startClamd({
      logDir: h.logDir,
      workDir: join(h.logDir, 'clamd-scan-time'),
      limits: { ...TEST_CLAMD_LIMITS, MaxScanTime: '50' },
    });
    ownClamds.push(clamd);
    const counting = await startClamdProxy(clamd.address, {});
    try {
      const members = Array.from({ length: 5000 }, (_, i) => ({
        name: `m${i}.txt`,
        data: `hello world ${i} `.repeat(50),
      }));
      const object = await h.put('limits/slow-to-scan.zip', await zip(members));
      const end = await scanThrough('scan-time', object, { clamd: counting.address });
      expect(end).toMatchObject({
        status: 'SUCCEEDED',
        output: {
          verdict: 'Unscannable',
          reason: 'limits-exceeded',
          signature: 'Heuristics.Limits.Exceeded.MaxScanTime',
        },
      });
      expect(counting.scans()).toBe(1);
    } finally {
      await counting.close();
    }
  });

  /**
   * clamd alone decides these, so the objects go straight through the worker's clamd client (the same
   * INSTREAM framing) instead of through moto: no 100 MiB upload. A clamd with MaxFileSize = MaxScanSize =
   * 128M gets its secondary limits lowered to the same 128M by localClamdConf, as the image sets them to
   * its MaxFileSize. At ClamAV's defaults (MaxHTMLNoTags 8M, MaxScriptNormalize 20M, MaxHTMLNormalize 40M,
   * PCREMaxFileSize 100M) clamd 1.4.6 answers OK for each object below (measured).
   */
  test("markers past ClamAV's default secondary limits are found: every pass reads to the end of the object", async () => {
    const limit = '128M';
    const clamd = await startClamd({
      logDir: h.logDir,
      workDir: join(h.logDir, 'clamd-secondary'),
      limits: { StreamMaxLength: limit, MaxFileSize: limit, MaxScanSize: limit },
    });
    ownClamds.push(clamd);
    const scanner = await createClamdScanner(clamd.address);
    const m = SECONDARY_PASS_MARKERS;
    const cases = [
      // Tag-stripped text over 8 MiB (the raw HTML is larger: the tags are dropped).
      {
        name: 'tag-stripped HTML over 8 MiB',
        body: () => pieces(html(12 * MiB, m.htmlNoTags.raw)),
        signature: TEST_SIGNATURES.htmlNoTagsMarker,
      },
      {
        name: 'script over 20 MiB',
        body: () => pieces(script(20 * MiB + 4096, m.script.raw)),
        signature: TEST_SIGNATURES.scriptMarker,
      },
      // The normalised copies count toward MaxScanSize: 40 MiB of HTML uses ~115 MiB of it.
      {
        name: 'HTML over 40 MiB',
        body: () => pieces(html(40 * MiB + 4096, m.html.raw)),
        signature: TEST_SIGNATURES.htmlMarker,
      },
      {
        name: 'PCRE subject at the end of 100 MiB',
        body: () => zerosThen(100 * MiB + 4096, Buffer.from(`${m.pcre.raw}\n`)),
        signature: TEST_SIGNATURES.pcreMarker,
      },
    ];
    for (const { name, body, signature } of cases) {
      const reply = await scanner.scan(Readable.from(body()));
      expect({ name, outcome: mapClamdReply(reply.reply) }).toEqual({
        name,
        outcome: { kind: 'verdict', verdict: { verdict: 'Infected', signature: `${signature}.UNOFFICIAL` } },
      });
    }
  });
});
