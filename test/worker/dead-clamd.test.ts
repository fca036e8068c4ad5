import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { waitFor } from '../../local/runtime/processes.js';
import { EICAR, TAIL_MARKER } from '../../scanner-image/signatures/generate.js';
import { type ClamdScanner, createClamdScanner } from '../../scanner-image/src/clamd-client.js';
import type { ClamdAddress } from '../../scanner-image/src/config.js';
import type { LogFields, Logger } from '../../scanner-image/src/log.js';
import { type RunningWorker, startWorker, type WorkerTuning } from '../../scanner-image/src/worker.js';
import {
  type ClamdProxy,
  FAST_TUNING,
  recordCalls,
  startClamdProxy,
  startHarness,
  type WorkerHarness,
  workerClients,
  workerConfig,
} from './harness.js';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;

/**
 * A full garbage collection on demand, without starting jest with --expose-gc: a wait bounded by a signal
 * that a GC can collect (AbortSignal.timeout inside AbortSignal.any, nodejs/node#57736) then never ends.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

interface LogEntry {
  readonly level: string;
  readonly message: string;
  readonly fields: LogFields;
  readonly at: number;
}

/** Keeps the worker's log lines: the clamd down/up transitions are what these tests time things by. */
function capturingLogger(): Logger & { entries: LogEntry[]; find(message: string): LogEntry | undefined } {
  const entries: LogEntry[] = [];
  const add =
    (level: string) =>
    (message: string, fields: LogFields = {}) => {
      entries.push({ level, message, fields, at: Date.now() });
    };
  return {
    entries,
    info: add('info'),
    warn: add('warn'),
    error: add('error'),
    find: (message) => entries.find((e) => e.message === message),
  };
}

const errorsAsText = (_key: string, value: unknown): unknown =>
  value instanceof Error ? `${value.name}: ${value.message}` : value;

/** The execution's end; if it does not come, the worker's log says why (it is captured, not printed). */
async function endOf(h: WorkerHarness, executionArn: string, log: { entries: LogEntry[] }) {
  try {
    return await h.waitForEnd(executionArn);
  } catch (error) {
    const lines = log.entries.map(
      (e) => `${new Date(e.at).toISOString()} ${e.level} ${e.message} ${JSON.stringify(e.fields, errorsAsText)}`,
    );
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nworker log:\n${lines.join('\n')}`);
  }
}

/**
 * The worker's summary line of the job for `key`. Waited for: the worker writes it after DeleteMessage,
 * which comes after the task token completion that ended the execution.
 */
async function jobDone(log: { entries: LogEntry[] }, key: string): Promise<LogFields | undefined> {
  const line = () => log.entries.find((e) => e.message === 'job done' && e.fields.key === key);
  await waitFor(`the worker's "job done" line for ${key}`, async () => line() !== undefined, 20_000, 20);
  return line()?.fields;
}

/** The real clamd client on `address`, counting PINGs: proof that the worker kept checking while it held off. */
async function countingScanner(address: ClamdAddress): Promise<ClamdScanner & { pings(): number }> {
  const scanner = await createClamdScanner(address);
  let pings = 0;
  return {
    scan: (body, signal) => scanner.scan(body, signal),
    version: () => scanner.version(),
    ping: () => {
      pings += 1;
      return scanner.ping();
    },
    pings: () => pings,
  };
}

/** An object whose only signature is in its last bytes: a scan cut short by clamd's death would look Clean. */
function tailMarked(bytes: number): Buffer {
  const body = Buffer.alloc(bytes, 0x61);
  TAIL_MARKER.copy(body, body.length - TAIL_MARKER.length);
  return body;
}

/**
 * clamd dies (SIGKILL, as with ExitOnOOM) while a scan is in flight. The worker scans through a slow-reading
 * proxy so the scan is still streaming into clamd when it dies. The proxy keeps accepting connections while
 * clamd is gone, so it is no evidence of clamd being up; the worker's PING goes through it too and must come
 * back with PONG from clamd itself, which is what the gate needs. The queue assertions look at SQS directly.
 */
describe('worker with a clamd that dies and comes back', () => {
  let h: WorkerHarness;
  let slow: ClamdProxy;
  let worker: RunningWorker | undefined;

  beforeAll(async () => {
    h = await startHarness();
    // 64 KiB per 100 ms: a 2 MiB object takes about 3 s to stream, time enough to kill clamd in the middle.
    slow = await startClamdProxy(h.clamd.address, { readDelayMs: 100 });
  });

  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
    if (h.clamd.process.hasExited()) await h.clamd.restart();
  });

  afterAll(async () => {
    await slow?.close();
    await h?.stop();
  });

  async function killClamd(): Promise<void> {
    // Our own clamd, by its PID.
    process.kill(h.clamd.process.pid, 'SIGKILL');
    await h.clamd.process.exited;
  }

  async function visibleMessages(queueUrl: string): Promise<number> {
    const attributes = await h.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return Number(attributes.Attributes?.ApproximateNumberOfMessages ?? '0');
  }

  async function setUp(name: string, tuning: Partial<WorkerTuning>) {
    const queueUrl = await h.createQueue(`${name}-jobs`);
    const machine = await h.createStateMachine(name, { queueUrl });
    const clients = workerClients(h);
    const sqsCalls = recordCalls(clients.sqs);
    const log = capturingLogger();
    const scanner = await countingScanner(slow.address);
    worker = await startWorker(
      workerConfig(h, { queueUrl, clamd: slow.address, metrics: { enabled: false, namespace: 'x', dimensions: [] } }),
      { ...clients, scanner, log },
      { ...FAST_TUNING, ...tuning },
    );
    return { queueUrl, machine, sqsCalls, log, scanner };
  }

  test('restarted within the wait: the scan in flight gets its real verdict, jobs sent meanwhile stay queued until clamd answers', async () => {
    const { queueUrl, machine, sqsCalls, log, scanner } = await setUp('comeback', { clamdOutageWaitMs: 60_000 });
    const inFlight = await h.put('dead/in-flight.bin', tailMarked(2 * MiB));
    const scansBefore = slow.scans();
    const inFlightRun = await h.startScan(inFlight, machine);
    await waitFor('the scan to reach clamd', async () => slow.scans() > scansBefore, 30_000, 20);

    await killClamd();
    await waitFor('the worker to notice clamd is down', async () => log.find('clamd down') !== undefined, 20_000, 20);
    const downAt = log.find('clamd down')?.at ?? 0;
    // A long poll already out when clamd went down is left to finish (see worker.ts); from then on, none.
    await waitFor(
      'the long poll that was out to end',
      async () =>
        sqsCalls.every((c) => c.command !== 'ReceiveMessageCommand' || c.at > downAt || c.settledAt !== undefined),
      20_000,
      20,
    );

    const clean = await h.startScan(await h.put('dead/queued-clean.txt', 'uploaded while clamd was down'), machine);
    const infected = await h.startScan(await h.put('dead/queued-eicar.com', EICAR), machine);
    await waitFor(
      'both jobs to wait in the queue (a worker that kept polling would take them)',
      async () => (await visibleMessages(queueUrl)) === 2,
      20_000,
      50,
    );
    // Long enough to have taken them (1 s polls) had it kept polling: ten more failed PINGs.
    const pingsBefore = scanner.pings();
    await waitFor('the worker to keep checking clamd', async () => scanner.pings() >= pingsBefore + 10, 20_000, 50);
    expect(await visibleMessages(queueUrl)).toBe(2);
    expect(log.find('clamd up')).toBeUndefined();

    await h.clamd.restart();
    const [inFlightEnd, cleanEnd, infectedEnd] = await Promise.all(
      [inFlightRun, clean, infected].map((arn) => endOf(h, arn, log)),
    );

    // Never Clean: clamd saw only part of it before it died.
    expect(inFlightEnd?.output?.verdict).not.toBe('Clean');
    // The job waited for clamd (same receipt, no redelivery) and its next try scanned the whole object.
    expect(inFlightEnd).toMatchObject({ status: 'SUCCEEDED', output: { verdict: 'Infected', bytesScanned: 2 * MiB } });
    expect(inFlightEnd?.output?.signature).toContain('Scanflow.Test.TailMarker');
    expect(await jobDone(log, inFlight.key)).toMatchObject({
      verdict: 'Infected',
      receiveCount: '1',
    });
    expect(cleanEnd).toMatchObject({ status: 'SUCCEEDED', output: { verdict: 'Clean' } });
    expect(infectedEnd).toMatchObject({ status: 'SUCCEEDED', output: { verdict: 'Infected' } });

    const upAt = log.find('clamd up')?.at ?? 0;
    expect(upAt).toBeGreaterThan(downAt);
    const receives = sqsCalls.filter((c) => c.command === 'ReceiveMessageCommand');
    expect(receives.filter((c) => c.at > downAt && c.at < upAt)).toEqual([]);
    expect(receives.some((c) => c.at >= upAt)).toBe(true);
  });

  test('down for longer than the wait: the scan in flight fails with ScannerUnavailableError after waiting, never Clean', async () => {
    const { machine, log } = await setUp('stays-down', { clamdOutageWaitMs: 2_000 });
    const scansBefore = slow.scans();
    const run = await h.startScan(await h.put('dead/stays-down.bin', tailMarked(2 * MiB)), machine);
    await waitFor('the scan to reach clamd', async () => slow.scans() > scansBefore, 30_000, 20);
    await killClamd();
    const killedAt = Date.now();

    // The job waits for clamd, bounded by clamdOutageWaitMs; that bound must survive garbage collection.
    const collecting = setInterval(collectGarbage, 200);
    const end = await endOf(h, run, log).finally(() => clearInterval(collecting));
    expect(end.output?.verdict).not.toBe('Clean');
    expect(end).toMatchObject({ status: 'FAILED', error: 'ScannerUnavailableError' });
    // The local engine does not report a failure's cause; the worker's log line has it.
    expect(await jobDone(log, 'dead/stays-down.bin')).toMatchObject({
      error: 'ScannerUnavailableError',
      detail: 'clamd did not answer PING for 2000 ms',
      receiveCount: '1',
    });
    // Not the old three failures in a few hundred ms: it waited for clamd first.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2_000);
    expect(log.find('clamd down')).toBeDefined();
  });

  test('stopped while clamd is down (the entrypoint stops the worker when clamd exits): the waiting job fails with ScannerUnavailableError at once', async () => {
    const { machine, log } = await setUp('stop-while-down', { clamdOutageWaitMs: 60_000 });
    const scansBefore = slow.scans();
    const run = await h.startScan(await h.put('dead/stop-while-down.bin', tailMarked(2 * MiB)), machine);
    await waitFor('the scan to reach clamd', async () => slow.scans() > scansBefore, 30_000, 20);
    await killClamd();
    await waitFor('the worker to notice clamd is down', async () => log.find('clamd down') !== undefined, 20_000, 20);

    const stopping = Date.now();
    await worker?.stop();
    worker = undefined;
    // Well inside the 20 s shutdown grace: the job was completed, not abandoned to redelivery at the deadline.
    expect(Date.now() - stopping).toBeLessThan(10_000);
    const end = await endOf(h, run, log);
    expect(end).toMatchObject({ status: 'FAILED', error: 'ScannerUnavailableError' });
    expect(await jobDone(log, 'dead/stop-while-down.bin')).toMatchObject({
      error: 'ScannerUnavailableError',
      detail: 'the worker is stopping and clamd does not answer PING',
    });
  });
});
