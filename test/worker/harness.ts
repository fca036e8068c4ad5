import { createReadStream, mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { InitializeMiddleware, MetadataBearer, MiddlewareStack } from '@smithy/types';
import {
  createCloudWatchClient,
  createS3Client,
  createSfnClient,
  createSqsClient,
} from '../../functions/commons/clients.js';
import type { ObjectIdentity } from '../../functions/commons/scan-job.js';
import { type ClamdLimits, type ClamdServer, startClamd } from '../../local/runtime/clamd.js';
import { type MotoServer, startMoto } from '../../local/runtime/moto.js';
import { waitFor } from '../../local/runtime/processes.js';
import type { SampleBody } from '../../local/samples.js';
import { type DatabaseVersion, writeTestDatabase } from '../../scanner-image/signatures/generate.js';
import { connectClamd } from '../../scanner-image/src/clamd-client.js';
import type { ClamdAddress, WorkerConfig } from '../../scanner-image/src/config.js';
import type { WorkerTuning } from '../../scanner-image/src/worker.js';

export const REGION = 'us-east-1';
const MiB = 1024 * 1024;

/** Small limits so every limit path is reachable with small files; MaxFileSize = MaxScanSize as in the image. */
export const TEST_CLAMD_LIMITS: ClamdLimits = { StreamMaxLength: '16M', MaxFileSize: '8M', MaxScanSize: '8M' };
export const TEST_MAX_OBJECT_BYTES = 12 * MiB;

export interface Clients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly sfn: SFNClient;
  readonly cloudWatch: CloudWatchClient;
}

export interface ExecutionEnd {
  readonly status: string;
  readonly output?: Record<string, unknown>;
  readonly error?: string;
  readonly cause?: string;
}

export interface WorkerHarness {
  readonly moto: MotoServer;
  readonly clamd: ClamdServer;
  readonly clients: Clients;
  readonly bucket: string;
  readonly queueUrl: string;
  readonly logDir: string;
  /** A scan-jobs queue of its own, for a test that runs its own worker. */
  createQueue(name: string): Promise<string>;
  /**
   * Minimal state machine: one sqs:sendMessage.waitForTaskToken Task that sends {taskToken, object,
   * executionArn}, without HeartbeatSeconds as in production unless `heartbeatSeconds` is given.
   */
  createStateMachine(
    name: string,
    options?: { queueUrl?: string; heartbeatSeconds?: number; timeoutSeconds?: number },
  ): Promise<string>;
  /** The state machine on the shared queue. */
  readonly stateMachineArn: string;
  put(key: string, body: SampleBody | Buffer | string): Promise<ObjectIdentity & { versionId: string }>;
  startScan(object: ObjectIdentity | Record<string, unknown>, stateMachineArn?: string): Promise<string>;
  waitForEnd(executionArn: string, timeoutMs?: number): Promise<ExecutionEnd>;
  stop(): Promise<void>;
}

/**
 * Worker knobs for tests: short polls and backoffs, and a short wait for a clamd that does not answer
 * (tests of a clamd coming back set their own, longer one).
 */
export const FAST_TUNING: Partial<WorkerTuning> = {
  pollWaitSeconds: 1,
  scanBackoffMs: 100,
  metricsFlushIntervalMs: 3_600_000,
  clamdRetryIntervalMs: 100,
  clamdOutageWaitMs: 1_000,
};

/** A worker configuration on the harness's queue and clamd; tests override what they exercise. */
export function workerConfig(h: WorkerHarness, overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return {
    queueUrl: h.queueUrl,
    clamd: h.clamd.address,
    concurrency: 4,
    maxObjectBytes: TEST_MAX_OBJECT_BYTES,
    heartbeatIntervalMs: 20_000,
    metrics: { enabled: true, namespace: 'ScanflowWorkerTest', dimensions: [{ Name: 'Suite', Value: 'worker' }] },
    shutdownGraceMs: 20_000,
    ...overrides,
  };
}

/** Fresh S3/SQS/SFN clients for a worker against the harness's moto (so a test can record their calls). */
export function workerClients(h: WorkerHarness) {
  const options = { endpoint: h.moto.endpoint, region: REGION };
  return {
    s3: createS3Client({ ...options, forcePathStyle: true }),
    sqs: createSqsClient(options),
    sfn: createSfnClient(options),
  };
}

export interface RecordedCall {
  readonly command: string;
  readonly key?: string;
  /** When the client was asked to send it (Date.now()). */
  readonly at: number;
  /** When its answer (or failure) came back; unset while it is out (e.g. a long poll). */
  readonly settledAt?: number;
}

/**
 * Records every command a client sends (name, object key, times), for "no GetObject was issued" and
 * "no ReceiveMessage while clamd was down" checks.
 */
export function recordCalls(client: S3Client | SFNClient | SQSClient): RecordedCall[] {
  const calls: RecordedCall[] = [];
  const middleware: InitializeMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
    const input = args.input as { Key?: string };
    const call: { -readonly [K in keyof RecordedCall]: RecordedCall[K] } = {
      command: context.commandName ?? '',
      ...(input.Key ? { key: input.Key } : {}),
      at: Date.now(),
    };
    calls.push(call);
    try {
      return await next(args);
    } finally {
      call.settledAt = Date.now();
    }
  };
  (client.middlewareStack as MiddlewareStack<object, MetadataBearer>).add(middleware, {
    step: 'initialize',
    name: 'recordCalls',
  });
  return calls;
}

let sequence = 0;

/**
 * `signatures`: the version and date the test DB reports (default: version 1, published when generated).
 * The DB is in `clamd.databaseDir`; writeDatabaseVersion there plus a RELOAD is a freshclam update.
 */
export async function startHarness(setup: { signatures?: DatabaseVersion } = {}): Promise<WorkerHarness> {
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  process.env.AWS_REGION ??= REGION;
  const logDir = mkdtempSync(join(tmpdir(), 'scanflow-worker-test-'));
  if (setup.signatures) writeTestDatabase(join(logDir, 'clamd', 'signatures'), setup.signatures);
  const [moto, clamd] = await Promise.all([
    startMoto({ logDir }),
    startClamd({ logDir, workDir: join(logDir, 'clamd'), limits: TEST_CLAMD_LIMITS }),
  ]);
  const options = { endpoint: moto.endpoint, region: REGION };
  const clients: Clients = {
    s3: createS3Client({ ...options, forcePathStyle: true }),
    sqs: createSqsClient(options),
    sfn: createSfnClient(options),
    cloudWatch: createCloudWatchClient(options),
  };
  sequence += 1;
  const prefix = `wt${process.pid}-${sequence}`;
  const bucket = `${prefix}-staging`;
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  const createQueue = async (name: string): Promise<string> => {
    const queue = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: `${prefix}-${name}`, Attributes: { VisibilityTimeout: '30' } }),
    );
    return queue.QueueUrl ?? '';
  };
  const queueUrl = await createQueue('scan-jobs');

  const createStateMachine = async (
    name: string,
    {
      queueUrl: target = queueUrl,
      heartbeatSeconds,
      timeoutSeconds = 120,
    }: { queueUrl?: string; heartbeatSeconds?: number; timeoutSeconds?: number } = {},
  ): Promise<string> => {
    const definition = {
      StartAt: 'ScanObject',
      States: {
        ScanObject: {
          Type: 'Task',
          Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
          Parameters: {
            QueueUrl: target,
            MessageBody: {
              'taskToken.$': '$$.Task.Token',
              'object.$': '$.object',
              'executionArn.$': '$$.Execution.Id',
            },
          },
          // Production has no HeartbeatSeconds; a test may add one to show the worker keeps such a task alive.
          ...(heartbeatSeconds === undefined ? {} : { HeartbeatSeconds: heartbeatSeconds }),
          TimeoutSeconds: timeoutSeconds,
          End: true,
        },
      },
    };
    const created = await clients.sfn.send(
      new CreateStateMachineCommand({
        name: `${prefix}-${name}`,
        definition: JSON.stringify(definition),
        roleArn: 'arn:aws:iam::123456789012:role/scanflow-test',
      }),
    );
    return created.stateMachineArn ?? '';
  };
  const defaultMachine = await createStateMachine('scan');
  let executions = 0;

  return {
    moto,
    clamd,
    clients,
    bucket,
    queueUrl,
    logDir,
    createQueue,
    createStateMachine,
    stateMachineArn: defaultMachine,
    async put(key, body) {
      const payload =
        typeof body === 'string' || Buffer.isBuffer(body)
          ? { Body: Buffer.from(body) }
          : body.kind === 'bytes'
            ? { Body: body.bytes }
            : { Body: createReadStream(body.path), ContentLength: body.size };
      const put = await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, ...payload }));
      const size = 'ContentLength' in payload ? (payload.ContentLength as number) : (payload.Body as Buffer).length;
      return { bucket, key, versionId: put.VersionId ?? 'null', etag: put.ETag ?? '', size };
    },
    async startScan(object, stateMachineArn = defaultMachine) {
      executions += 1;
      const started = await clients.sfn.send(
        new StartExecutionCommand({
          stateMachineArn,
          name: `scan-${executions}-${Date.now()}`,
          input: JSON.stringify({ object }),
        }),
      );
      return started.executionArn ?? '';
    },
    async waitForEnd(executionArn, timeoutMs = 60_000) {
      let end: ExecutionEnd | undefined;
      await waitFor(
        `execution ${executionArn} to end`,
        async () => {
          const described = await clients.sfn.send(new DescribeExecutionCommand({ executionArn }));
          if (described.status === 'RUNNING') return false;
          end = {
            status: described.status ?? 'UNKNOWN',
            ...(described.output ? { output: JSON.parse(described.output) as Record<string, unknown> } : {}),
            ...(described.error ? { error: described.error } : {}),
            ...(described.cause ? { cause: described.cause } : {}),
          };
          return true;
        },
        timeoutMs,
        200,
      );
      return end as ExecutionEnd;
    },
    async stop() {
      await Promise.allSettled([moto.stop(), clamd.stop()]);
    },
  };
}

/**
 * A proxy in front of clamd, listening on a unix socket of its own like clamd's. `replyDelayMs` holds back
 * clamd's reply to INSTREAM: a "long scan" of any object, without a large object. `readDelayMs` makes it a
 * slow reader: after each piece it reads from the client it stops reading for that long, so the client's
 * writes back up in the socket (the condition under which a client that does not order its frames lets
 * the terminator overtake the data). PING/VERSION pass straight through. Counts INSTREAM sessions.
 */
export interface ClamdProxy {
  readonly address: ClamdAddress;
  /** INSTREAM sessions opened so far. */
  scans(): number;
  close(): Promise<void>;
}

export async function startClamdProxy(
  upstream: ClamdAddress,
  { replyDelayMs = 0, readDelayMs = 0 }: { replyDelayMs?: number; readDelayMs?: number },
): Promise<ClamdProxy> {
  let scans = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstreamSocket = connectClamd(upstream);
    sockets.add(client);
    sockets.add(upstreamSocket);
    let isScan: boolean | undefined;
    client.on('data', (chunk: Buffer) => {
      if (isScan === undefined) {
        isScan = chunk.subarray(0, 9).toString('latin1') === 'zINSTREAM';
        if (isScan) scans += 1;
      }
      upstreamSocket.write(chunk);
      if (readDelayMs > 0) {
        client.pause();
        setTimeout(() => client.resume(), readDelayMs);
      }
    });
    client.on('end', () => upstreamSocket.end());
    upstreamSocket.on('data', (chunk: Buffer) => {
      if (isScan && replyDelayMs > 0) setTimeout(() => client.write(chunk), replyDelayMs);
      else client.write(chunk);
    });
    upstreamSocket.on('end', () =>
      isScan && replyDelayMs > 0 ? setTimeout(() => client.end(), replyDelayMs + 10) : client.end(),
    );
    const drop = (): void => {
      client.destroy();
      upstreamSocket.destroy();
    };
    client.on('error', drop);
    upstreamSocket.on('error', drop);
    client.on('close', () => sockets.delete(client));
    upstreamSocket.on('close', () => sockets.delete(upstreamSocket));
  });
  const path = join(mkdtempSync(join(tmpdir(), 'clamd-proxy-')), 'proxy.sock');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    address: { kind: 'socket', path },
    scans: () => scans,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
