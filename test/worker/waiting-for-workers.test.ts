import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { InitializeMiddleware, MetadataBearer, MiddlewareStack } from '@smithy/types';
import { createS3Client, createSfnClient, createSqsClient } from '../../functions/commons/clients.js';
import { MAX_JOB_DELIVERIES, type ScanTimingPolicy } from '../../functions/commons/scan-execution.js';
import { scanJobSchema } from '../../functions/commons/scan-job.js';
import type { StartScanConfig } from '../../functions/start-scan/config.js';
import { startScan } from '../../functions/start-scan/start-scan.js';
import { type ClamdServer, startClamd } from '../../local/runtime/clamd.js';
import { waitFor } from '../../local/runtime/processes.js';
import { type ReceivedResult, receiveResults } from '../../local/runtime/results.js';
import { EICAR } from '../../scanner-image/signatures/generate.js';
import type { ClamdAddress, WorkerConfig } from '../../scanner-image/src/config.js';
import { silentLogger } from '../../scanner-image/src/log.js';
import { type RunningWorker, startWorker, type WorkerTuning } from '../../scanner-image/src/worker.js';
import { type LocalPipeline, REGION, startLocalPipeline, waitForExecutionEnd } from '../support/local-aws.js';
import {
  FAST_TUNING,
  type RecordedCall,
  recordCalls,
  startClamdProxy,
  TEST_CLAMD_LIMITS,
  TEST_MAX_OBJECT_BYTES,
} from './harness.js';

/**
 * Issue #8: waiting for a worker is not worker silence. The production ASL on the local engine, start-scan's
 * own start logic and the real worker against a real clamd: jobs that wait in scan-jobs (no worker yet, or a
 * pool busy with a burst) get their real verdicts, a job whose task is already closed is dropped before
 * anything is read, and a job its workers keep dying on ends as Error without taking more of them down.
 */
jest.setTimeout(180_000);

let pipeline: LocalPipeline;
let clamd: ClamdServer;
let logDir: string;
const results: ReceivedResult[] = [];

/** Generous: only a worker that never comes makes a job time out. */
const WAITING_TIMING: ScanTimingPolicy = {
  queueWaitSeconds: 120,
  baseTimeoutSeconds: 60,
  minBytesPerSecond: 1_000_000,
  maxTimeoutSeconds: 600,
};

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), 'scanflow-waiting-'));
  [pipeline, clamd] = await Promise.all([
    startLocalPipeline(),
    startClamd({ logDir, workDir: join(logDir, 'clamd'), limits: TEST_CLAMD_LIMITS }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([pipeline?.stop(), clamd?.stop()]);
  // Stopping waits for the worker's last long poll (up to its poll wait) and for the servers to exit.
}, 60_000);

function startScanConfig(timing: ScanTimingPolicy): StartScanConfig {
  return {
    stateMachineArn: pipeline.layout.stateMachineArn,
    pipelineBuckets: new Set([pipeline.layout.buckets.destination, pipeline.layout.buckets.quarantine]),
    excludedKeyPrefixes: [],
    excludedKeySuffixes: [],
    timing,
    copySourceEncoding: 'raw',
  };
}

/** Uploads to staging and starts its scan the way start-scan does for the S3 event. */
async function uploadAndStart(key: string, body: string | Buffer, timing = WAITING_TIMING): Promise<string> {
  await pipeline.clients.s3.send(
    new PutObjectCommand({ Bucket: pipeline.layout.buckets.staging, Key: key, Body: body }),
  );
  const outcome = await startScan(
    { bucket: pipeline.layout.buckets.staging, keyCandidates: [key] },
    { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config: startScanConfig(timing) },
  );
  if (outcome.outcome !== 'started') throw new Error(`expected a started execution for ${key}, got ${outcome.outcome}`);
  return `${pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:')}:${outcome.executionName}`;
}

/** The execution ended (every path succeeds) and its one result notification: the verdict the uploader sees. */
async function verdictOf(executionArn: string): Promise<{ verdict: string; reason?: string; signature?: string }> {
  const ended = await waitForExecutionEnd(pipeline.clients, executionArn, 150_000);
  expect(ended.status).toBe('SUCCEEDED');
  let found: ReceivedResult | undefined;
  await waitFor(
    `the result of ${executionArn}`,
    async () => {
      results.push(...(await receiveResults(pipeline.clients.sqs, pipeline.layout.queues.results)));
      found = results.find((r) => r.notification.executionArn === executionArn);
      return found !== undefined;
    },
    20_000,
  );
  const scan = found?.notification.scan;
  return {
    verdict: found?.notification.verdict ?? '(none)',
    ...(scan?.reason ? { reason: scan.reason } : {}),
    ...(scan?.signature ? { signature: scan.signature } : {}),
  };
}

interface StartedWorker {
  readonly worker: RunningWorker;
  readonly s3Calls: RecordedCall[];
  readonly sfnCalls: RecordedCall[];
  readonly sqsCalls: RecordedCall[];
  /** VisibilityTimeout of every ChangeMessageVisibility the worker sent, in order. */
  readonly visibilityChanges: number[];
}

async function startPoolWorker(
  overrides: Partial<WorkerConfig> & { clamd?: ClamdAddress } = {},
  tuning: Partial<WorkerTuning> = {},
): Promise<StartedWorker> {
  const options = { endpoint: pipeline.moto.endpoint, region: REGION };
  const clients = {
    s3: createS3Client({ ...options, forcePathStyle: true }),
    sqs: createSqsClient(options),
    sfn: createSfnClient(options),
  };
  const s3Calls = recordCalls(clients.s3);
  const sfnCalls = recordCalls(clients.sfn);
  const sqsCalls = recordCalls(clients.sqs);
  const visibilityChanges = recordVisibilityChanges(clients.sqs);
  const config: WorkerConfig = {
    queueUrl: pipeline.layout.queues.scanJobs,
    clamd: clamd.address,
    concurrency: 2,
    maxObjectBytes: TEST_MAX_OBJECT_BYTES,
    // Short: in the old design the state's heartbeat timeout followed this interval (a third of it).
    heartbeatIntervalMs: 1_000,
    metrics: { enabled: false, namespace: 'x', dimensions: [] },
    shutdownGraceMs: 20_000,
    ...overrides,
  };
  const worker = await startWorker(config, { ...clients, log: silentLogger }, { ...FAST_TUNING, ...tuning });
  return { worker, s3Calls, sfnCalls, sqsCalls, visibilityChanges };
}

function recordVisibilityChanges(sqs: SQSClient): number[] {
  const seen: number[] = [];
  const middleware: InitializeMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
    if (context.commandName === 'ChangeMessageVisibilityCommand') {
      seen.push((args.input as { VisibilityTimeout: number }).VisibilityTimeout);
    }
    return next(args);
  };
  (sqs.middlewareStack as MiddlewareStack<object, MetadataBearer>).add(middleware, {
    step: 'initialize',
    name: 'recordVisibilityChanges',
  });
  return seen;
}

async function scanJobsLeft(): Promise<number> {
  const attributes = await pipeline.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: pipeline.layout.queues.scanJobs,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

async function scanJobsVisibleAndNot(): Promise<{ visible: number; inFlight: number }> {
  const attributes = await pipeline.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: pipeline.layout.queues.scanJobs,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

async function scanJobsDeadLettered(): Promise<number> {
  const attributes = await pipeline.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: pipeline.layout.queues.scanJobsDlq,
      AttributeNames: ['ApproximateNumberOfMessages'],
    }),
  );
  return Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** The pool at zero: nothing but time passes. The scenario under test, not a wait for a result. */
async function noWorkerFor(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Takes a job the way a worker that dies would: receives it (ApproximateReceiveCount + 1) and never
 * finishes it. Each of `takes` (executionArn → how many takers) is received that many times; the message is
 * then visible again for the real worker.
 */
async function loseWorkersOn(takes: ReadonlyMap<string, number>): Promise<void> {
  const received = new Map<string, { count: number; receipt: string }>();
  const done = () => [...takes].every(([arn, wanted]) => (received.get(arn)?.count ?? 0) >= wanted);
  await waitFor(
    'the jobs to be taken by workers that die',
    async () => {
      const response = await pipeline.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: pipeline.layout.queues.scanJobs,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 120,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      for (const message of response.Messages ?? []) {
        const job = scanJobSchema.parse(JSON.parse(message.Body ?? '{}'));
        const count = Number(message.Attributes?.ApproximateReceiveCount);
        received.set(job.executionArn ?? '', { count, receipt: message.ReceiptHandle ?? '' });
        // Taken fewer times than wanted: visible again at once, to be taken again.
        if (count < (takes.get(job.executionArn ?? '') ?? 0)) await release(message.ReceiptHandle ?? '');
      }
      return done();
    },
    30_000,
  );
  for (const { receipt } of received.values()) await release(receipt);
}

async function release(receipt: string): Promise<void> {
  await pipeline.clients.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: pipeline.layout.queues.scanJobs,
      ReceiptHandle: receipt,
      VisibilityTimeout: 0,
    }),
  );
}

describe('waiting for a worker is not worker silence', () => {
  test('uploads made while the pool is at zero, for longer than any heartbeat, get their real verdicts once a worker starts', async () => {
    // A pass-through proxy in front of clamd: it counts the INSTREAM sessions.
    const proxy = await startClamdProxy(clamd.address, {});
    const uploads = [
      { key: 'cold/first.txt', body: 'nothing to see', expected: { verdict: 'Clean' } },
      { key: 'cold/eicar.com', body: EICAR, expected: { verdict: 'Infected' } },
      { key: 'cold/second.txt', body: 'still nothing', expected: { verdict: 'Clean' } },
    ];
    const executions = [];
    for (const upload of uploads) executions.push(await uploadAndStart(upload.key, upload.body));
    // Longer than the old design's every attempt: a 2 s heartbeat timeout, retried twice with backoff.
    await noWorkerFor(15_000);
    const { worker } = await startPoolWorker({ clamd: proxy.address });
    try {
      const verdicts = [];
      for (const executionArn of executions) verdicts.push(await verdictOf(executionArn));
      expect(verdicts).toEqual(uploads.map((u) => expect.objectContaining(u.expected)));
      // Each upload was scanned once: no orphaned attempt was scanned beside it.
      expect(proxy.scans()).toBe(uploads.length);
      await waitFor('scan-jobs to drain', async () => (await scanJobsLeft()) === 0, 20_000);
    } finally {
      await worker.stop();
      await proxy.close();
    }
  });

  test("a burst larger than the pool's concurrency drains without an Error verdict", async () => {
    // Each scan takes 2 s and the pool scans two at a time: the last jobs wait in scan-jobs for 15 s, longer
    // than the old design's every attempt (a 2 s heartbeat timeout, retried twice with backoff).
    const proxy = await startClamdProxy(clamd.address, { replyDelayMs: 2_000 });
    const { worker } = await startPoolWorker({ clamd: proxy.address, concurrency: 2, heartbeatIntervalMs: 500 });
    try {
      const keys = Array.from({ length: 16 }, (_, i) => `burst/file-${i}.txt`);
      const executions = [];
      for (const key of keys) executions.push(await uploadAndStart(key, `burst content ${key}`));
      const verdicts = [];
      for (const executionArn of executions) verdicts.push((await verdictOf(executionArn)).verdict);
      expect(verdicts).toEqual(keys.map(() => 'Clean'));
      expect(proxy.scans()).toBe(keys.length);
      await waitFor('scan-jobs to drain', async () => (await scanJobsLeft()) === 0, 20_000);
    } finally {
      await worker.stop();
      await proxy.close();
    }
  });

  test('a job whose execution already ended is dropped before anything is read', async () => {
    // Nobody takes the job before its timeout (queue wait + scan, 3 s here): Error States.Timeout, final.
    const short: ScanTimingPolicy = {
      queueWaitSeconds: 1,
      baseTimeoutSeconds: 2,
      minBytesPerSecond: 1_000_000,
      maxTimeoutSeconds: 10,
    };
    const key = 'late/orphan.txt';
    const executionArn = await uploadAndStart(key, 'nobody came', short);
    expect(await verdictOf(executionArn)).toMatchObject({ verdict: 'Error', reason: 'States.Timeout' });
    // A timeout is not retried: its one job is still queued, no second one beside it.
    expect(await scanJobsLeft()).toBe(1);

    const { worker, s3Calls, sfnCalls } = await startPoolWorker();
    try {
      await waitFor('the orphaned job to be dropped', async () => (await scanJobsLeft()) === 0, 30_000);
    } finally {
      await worker.stop();
    }
    expect(s3Calls.filter((c) => c.key === key)).toEqual([]);
    const sfnCommands = sfnCalls.map((c) => c.command);
    expect(sfnCommands).not.toContain('SendTaskSuccessCommand');
    expect(sfnCommands).not.toContain('SendTaskFailureCommand');
    expect(await scanJobsDeadLettered()).toBe(0);
  });

  test(`a job taken by workers that died is continued with its token; after ${MAX_JOB_DELIVERIES} lost workers it ends as Error WorkerLostError, unread`, async () => {
    const survivor = await uploadAndStart('lost/survivor.txt', 'two workers died on me');
    const poison = await uploadAndStart('lost/poison.txt', 'every worker dies on me');
    await loseWorkersOn(
      new Map([
        [survivor, MAX_JOB_DELIVERIES - 1],
        [poison, MAX_JOB_DELIVERIES],
      ]),
    );
    const { worker, s3Calls } = await startPoolWorker();
    try {
      // Received for the MAX_JOB_DELIVERIES-th time: scanned, and the redelivered token still completes.
      expect(await verdictOf(survivor)).toMatchObject({ verdict: 'Clean' });
      // Received once more than that: failed before anything is read.
      expect(await verdictOf(poison)).toMatchObject({ verdict: 'Error', reason: 'WorkerLostError' });
      await waitFor('scan-jobs to drain', async () => (await scanJobsLeft()) === 0, 20_000);
    } finally {
      await worker.stop();
    }
    expect(s3Calls.filter((c) => c.key === 'lost/poison.txt')).toEqual([]);
    expect(s3Calls.filter((c) => c.key === 'lost/survivor.txt').map((c) => c.command)).toContain('GetObjectCommand');
    expect(await scanJobsDeadLettered()).toBe(0);
  });

  test('a job abandoned at the shutdown deadline is released at once and finished by the next worker, same token', async () => {
    const slow = await startClamdProxy(clamd.address, { replyDelayMs: 5_000 });
    const first = await startPoolWorker({ clamd: slow.address, shutdownGraceMs: 200 });
    let second: StartedWorker | undefined;
    try {
      const executionArn = await uploadAndStart('shutdown/abandoned.txt', 'finish me elsewhere');
      await waitFor('the scan to reach clamd', async () => slow.scans() > 0, 30_000, 50);
      await first.worker.stop();
      // Its last word on the message: visible again now, not after the three intervals it last set.
      expect(first.visibilityChanges.at(-1)).toBe(0);
      second = await startPoolWorker();
      expect(await verdictOf(executionArn)).toMatchObject({ verdict: 'Clean' });
    } finally {
      await second?.worker.stop();
      await slow.close();
    }
  });

  test("a job a stopping worker's last poll took is handed back at once, not hidden from the rest of the pool", async () => {
    const stopping = await startPoolWorker({}, { pollWaitSeconds: 5 });
    await waitFor(
      'a long poll to be out',
      async () => stopping.sqsCalls.some((c) => c.command === 'ReceiveMessageCommand' && c.settledAt === undefined),
      10_000,
      20,
    );
    const stopped = stopping.worker.stop();
    const executionArn = await uploadAndStart('stop/arrived-during-the-last-poll.txt', 'hand me on');
    await stopped;
    expect(stopping.sqsCalls.filter((c) => c.command === 'ReceiveMessageCommand').at(-1)?.settledAt).toBeDefined();
    // The last poll did take it, and handed it back: visible for the next worker now, not after the queue's
    // visibility timeout.
    expect(stopping.visibilityChanges).toEqual([0]);
    expect(await scanJobsVisibleAndNot()).toEqual({ visible: 1, inFlight: 0 });
    expect(stopping.s3Calls).toEqual([]);
    const next = await startPoolWorker();
    try {
      expect(await verdictOf(executionArn)).toMatchObject({ verdict: 'Clean' });
    } finally {
      await next.worker.stop();
    }
  });
});
