import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { GetMetricDataCommand, ListMetricsCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { clamdCommand } from '../../local/runtime/clamd.js';
import { waitFor } from '../../local/runtime/processes.js';
import { DATABASE_VERSION_FILE, writeDatabaseVersion } from '../../scanner-image/signatures/generate.js';
import { type ClamdScanner, createClamdScanner } from '../../scanner-image/src/clamd-client.js';
import type { LogFields, Logger } from '../../scanner-image/src/log.js';
import { SIGNATURE_METRICS } from '../../scanner-image/src/signature-freshness.js';
import { type RunningWorker, startWorker } from '../../scanner-image/src/worker.js';
import { FAST_TUNING, startHarness, type WorkerHarness, workerClients, workerConfig } from './harness.js';

jest.setTimeout(120_000);

const HOUR = 3_600_000;
const NAMESPACE = 'ScanflowFreshnessTest';
const DIMENSIONS = [{ Name: 'Suite', Value: 'freshness' }];
/** Whole seconds: clamd keeps the publication time in seconds. */
const wholeSeconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/**
 * The worker against a real clamd whose test DB carries a version and date (daily.cud), publishing to
 * moto's CloudWatch: what it publishes with no scan at all, what a freshclam update (a new daily container
 * plus clamd RELOAD, what freshclam's NotifyClamd sends) changes, and what an unversioned DB publishes.
 */
describe('signature freshness metrics', () => {
  const first = { version: 4242, publishedAt: wholeSeconds(Date.now() - 30 * HOUR) };
  const second = { version: 4243, publishedAt: wholeSeconds(first.publishedAt.getTime() + 26 * HOUR) };
  let h: WorkerHarness;
  let worker: RunningWorker | undefined;
  let versionCalls = 0;
  const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const log: Logger = {
    info: (message, fields) => lines.push({ level: 'info', message, ...(fields ? { fields } : {}) }),
    warn: (message, fields) => lines.push({ level: 'warn', message, ...(fields ? { fields } : {}) }),
    error: (message, fields) => lines.push({ level: 'error', message, ...(fields ? { fields } : {}) }),
  };
  let startedAt = 0;

  beforeAll(async () => {
    h = await startHarness({ signatures: first });
    const scanner = await createClamdScanner(h.clamd.address);
    // Counts VERSION reads: nothing is scanned here, so each one after the first is a freshness check.
    const counting: ClamdScanner = {
      scan: (body, signal) => scanner.scan(body, signal),
      ping: () => scanner.ping(),
      version: () => {
        versionCalls += 1;
        return scanner.version();
      },
    };
    startedAt = Date.now();
    worker = await startWorker(
      workerConfig(h, {
        queueUrl: await h.createQueue('freshness-jobs'),
        metrics: { enabled: true, namespace: NAMESPACE, dimensions: DIMENSIONS },
      }),
      { ...workerClients(h), cloudWatch: h.clients.cloudWatch, scanner: counting, log },
      // Checks come often so the test does not wait a minute for each; it waits on what they publish.
      { ...FAST_TUNING, signatureCheckIntervalMs: 200 },
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await h?.stop();
  });

  /** Minimum, Maximum, Sum and SampleCount of one metric since the worker started, as moto's CloudWatch has them. */
  async function statistics(metricName: string): Promise<Record<string, number | undefined>> {
    const stats = ['Minimum', 'Maximum', 'Sum', 'SampleCount'] as const;
    const queries: MetricDataQuery[] = stats.map((stat) => ({
      Id: stat.toLowerCase(),
      MetricStat: {
        Metric: { Namespace: NAMESPACE, MetricName: metricName, Dimensions: DIMENSIONS },
        Period: 3600,
        Stat: stat,
      },
    }));
    const answer = await h.clients.cloudWatch.send(
      new GetMetricDataCommand({
        MetricDataQueries: queries,
        StartTime: new Date(startedAt - 60_000),
        EndTime: new Date(Date.now() + 60_000),
      }),
    );
    return Object.fromEntries(
      stats.map((stat) => [stat, answer.MetricDataResults?.find((r) => r.Id === stat.toLowerCase())?.Values?.[0]]),
    );
  }

  const hours = (from: Date, to: number): number => (to - from.getTime()) / HOUR;

  test('published at start with no scan: age from the DB date, the version, the worker dimensions', async () => {
    await waitFor(
      'the first freshness metrics',
      async () => ((await statistics(SIGNATURE_METRICS.ageHours)).SampleCount ?? 0) >= 1,
      30_000,
      100,
    );
    const listed = await h.clients.cloudWatch.send(new ListMetricsCommand({ Namespace: NAMESPACE }));
    expect(new Set((listed.Metrics ?? []).map((m) => m.MetricName))).toEqual(
      new Set([SIGNATURE_METRICS.ageHours, SIGNATURE_METRICS.databaseVersion, SIGNATURE_METRICS.updates]),
    );
    for (const metric of listed.Metrics ?? []) expect(metric.Dimensions).toEqual(DIMENSIONS);

    const age = await statistics(SIGNATURE_METRICS.ageHours);
    // Taken after the query: the worker keeps publishing, and every reading the query saw precedes this.
    const checkedBy = Date.now();
    // Every reading so far was taken between the worker's start and now, 30 h after the DB's date.
    expect(age.Minimum).toBeGreaterThanOrEqual(hours(first.publishedAt, startedAt));
    expect(age.Maximum).toBeLessThanOrEqual(hours(first.publishedAt, checkedBy));
    expect(await statistics(SIGNATURE_METRICS.databaseVersion)).toMatchObject({ Minimum: 4242, Maximum: 4242 });
    expect((await statistics(SIGNATURE_METRICS.updates)).Sum).toBe(0);
  });

  test('a freshclam update (new daily container, clamd RELOAD) is one SignatureUpdates and a younger age', async () => {
    writeDatabaseVersion(h.clamd.databaseDir, second);
    const reloadedAt = Date.now();
    expect(await clamdCommand(h.clamd.address, 'RELOAD')).toBe('RELOADING');
    await waitFor(
      'the worker to publish the new version',
      async () => (await statistics(SIGNATURE_METRICS.databaseVersion)).Maximum === 4243,
      30_000,
      100,
    );
    const checkedBy = Date.now();
    expect((await statistics(SIGNATURE_METRICS.updates)).Sum).toBe(1);
    expect(lines.filter((l) => l.message === 'signature database updated')).toEqual([
      {
        level: 'info',
        message: 'signature database updated',
        fields: { from: 4242, to: 4243, publishedAt: second.publishedAt.toISOString() },
      },
    ]);
    // The youngest reading is of the new DB (published 26 h after the first, so about 4 h old).
    const age = await statistics(SIGNATURE_METRICS.ageHours);
    expect(age.Minimum).toBeGreaterThanOrEqual(hours(second.publishedAt, reloadedAt));
    expect(age.Minimum).toBeLessThanOrEqual(hours(second.publishedAt, checkedBy));
    expect(age.Maximum).toBeGreaterThanOrEqual(hours(first.publishedAt, startedAt));
  });

  test('an unversioned DB (no daily.* container) publishes no freshness at all, and is logged once', async () => {
    rmSync(join(h.clamd.databaseDir, DATABASE_VERSION_FILE));
    expect(await clamdCommand(h.clamd.address, 'RELOAD')).toBe('RELOADING');
    const unversioned = 'clamd reports no signature database version or date; its freshness is not published';
    await waitFor(
      'the worker to notice the unversioned DB',
      async () => lines.some((l) => l.message === unversioned),
      30_000,
      100,
    );
    const before = await Promise.all(Object.values(SIGNATURE_METRICS).map(statistics));
    // Checks run one at a time and each sends before the next reads VERSION: three more reads mean at
    // least two complete checks of the unversioned DB after the one that logged.
    const calls = versionCalls;
    await waitFor('three more freshness checks', async () => versionCalls >= calls + 3, 30_000, 50);
    expect(await Promise.all(Object.values(SIGNATURE_METRICS).map(statistics))).toEqual(before);
    expect(lines.filter((l) => l.message === unversioned)).toEqual([
      { level: 'warn', message: unversioned, fields: { version: expect.stringMatching(/^ClamAV \d+\.\d+\.\d+$/) } },
    ]);
  });
});
