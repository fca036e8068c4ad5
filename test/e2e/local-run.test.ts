import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectTaggingCommand, HeadObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime/pipeline.js';
import { waitFor } from '../../local/runtime/processes.js';
import { scanThroughPipeline, type UploadOutcome } from '../../local/runtime/scan-session.js';
import { buildSamples, LOCAL_LIMITS, type Sample } from '../../local/samples.js';

/**
 * The whole local pipeline with every real part: uploads land in the staging bucket, S3 → EventBridge → SQS
 * drives the real start-scan handler, the production ASL runs on moto, the real worker streams each object
 * into a real clamd, and results come back over SNS. The same run `npm start` does.
 */
let runtime: LocalRuntime;
let samples: Sample[];
let outcomes: UploadOutcome[];

beforeAll(async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'scanflow-e2e-'));
  samples = await buildSamples(join(stateDir, 'samples'));
  runtime = await startLocalRuntime({
    maxObjectBytes: LOCAL_LIMITS.maxObjectBytes,
    clamdLimits: LOCAL_LIMITS.clamd,
    stateDir,
  });
  outcomes = await scanThroughPipeline(
    runtime,
    samples.map((sample) => ({
      key: sample.key,
      source: sample.body.kind === 'file' ? { path: sample.body.path } : { body: sample.body.bytes },
      expected: sample.expected,
    })),
    { timeoutMs: 120_000 },
  );
}, 240_000);

afterAll(async () => {
  await runtime?.stop();
  // Stopping waits for the worker's last long poll (up to its poll wait) and for the servers to exit.
}, 60_000);

async function tagsOf(bucket: string, key: string): Promise<Record<string, string>> {
  const tags = await runtime.clients.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return Object.fromEntries((tags.TagSet ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
}

async function exists(bucket: string, key: string): Promise<boolean> {
  try {
    await runtime.clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return false;
    throw error;
  }
}

const expectedArea = {
  Clean: 'destination',
  Infected: 'quarantine',
  Unscannable: 'staging',
  Error: 'staging',
} as const;

describe('the local run, end to end', () => {
  it('gives every sample its expected verdict', () => {
    const table = outcomes.map((o) => [
      o.upload.key,
      o.notification?.verdict,
      o.notification?.scan.reason,
      o.asExpected,
    ]);
    expect(table.filter(([, , , ok]) => !ok)).toEqual([]);
    expect(outcomes).toHaveLength(samples.length);
  });

  it('leaves each object where its verdict sends it, tagged with that verdict', async () => {
    const { staging, destination, quarantine } = runtime.layout.buckets;
    const bucketOf = { destination, quarantine, staging };
    for (const sample of samples) {
      const area = expectedArea[sample.expected.verdict];
      const bucket = bucketOf[area];
      expect({ key: sample.key, there: await exists(bucket, sample.key) }).toEqual({ key: sample.key, there: true });
      const tags = await tagsOf(bucket, sample.key);
      expect({ key: sample.key, result: tags['scan-result'] }).toEqual({
        key: sample.key,
        result: sample.expected.verdict,
      });
      if (area !== 'staging') expect(await exists(staging, sample.key)).toBe(false);
    }
  });

  it('records every result once in the pipeline metrics, and start-scan failed no event', async () => {
    await waitFor(
      'record-result to take every result',
      async () => runtime.handlerStats().recordResult.succeeded >= samples.length,
      30_000,
    );
    const stats = runtime.handlerStats();
    expect(stats.recordResult).toEqual({ succeeded: samples.length, failed: 0 });
    expect(stats.startScan.failed).toBe(0);
  });

  it('never calls an Unscannable or Infected sample Clean, and names what it found', () => {
    for (const outcome of outcomes) {
      const expected = outcome.upload.expected;
      if (expected?.verdict === 'Infected') {
        expect(expected.signature).toBeDefined();
        expect(outcome.notification?.scan.signature).toContain(expected.signature);
      }
      if (expected?.verdict !== 'Clean') expect(outcome.notification?.verdict).not.toBe('Clean');
    }
  });
});
