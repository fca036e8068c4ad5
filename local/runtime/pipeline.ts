import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ClamdAddress, clamdAddressEnvironment, describeClamdAddress } from '../../scanner-image/src/config.js';
import { type ClamdLimits, startClamd } from './clamd.js';
import { PROJECT_ROOT, startMoto } from './moto.js';
import { GiveUpWaiting, type ManagedProcess, startProcess, waitFor } from './processes.js';
import { createLocalClients, type LocalClients, type LocalLayout, provisionLocalPipeline } from './provision.js';
import { type SqsLambdaHandler, startSqsEventSource } from './sqs-event-source.js';

export const LOCAL_REGION = 'us-east-1';
export const STATE_DIR = join(PROJECT_ROOT, '.scanflow');

export interface LocalRuntimeOptions {
  /** Worker setting: objects above this are Unscannable too-large without being downloaded. */
  readonly maxObjectBytes: number;
  readonly workerConcurrency?: number;
  /** Worker HEARTBEAT_INTERVAL_SECONDS: a job's visibility is three of these, so a lost worker's job returns that soon. */
  readonly workerHeartbeatIntervalSeconds?: number;
  /** clamd size limits; the samples scale them down so every path is reachable with small files. */
  readonly clamdLimits?: ClamdLimits;
  /** Where logs, clamd's files and local.json go. Default .scanflow/ in the project. */
  readonly stateDir?: string;
  readonly onLog?: (line: string) => void;
  /**
   * The endpoint start-scan and the worker call, given moto's. Default: moto itself. Tests put a fault
   * proxy in front of moto here (test/support/fault-proxy.ts) for answers moto cannot give (SSE-C,
   * throttling); the runtime's own clients keep talking to moto directly.
   */
  readonly serviceEndpoint?: (motoEndpoint: string) => Promise<string>;
}

export interface LocalRuntime {
  readonly layout: LocalLayout;
  readonly clients: LocalClients;
  readonly logDir: string;
  readonly clamd: { readonly address: ClamdAddress; readonly version: string };
  readonly worker: ManagedProcess;
  /** Records each in-process handler took, and how many it failed. */
  handlerStats(): Record<'startScan' | 'recordResult', { readonly succeeded: number; readonly failed: number }>;
  /** What a user needs to drive the pipeline by hand; also written to .scanflow/local.json. */
  describe(): Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Starts the whole pipeline on this machine with the real parts: moto as the AWS APIs (with the production
 * ASL executing), clamd with the project's signature DB, the real start-scan handler behind an SQS event
 * source, and the real worker as its own process, configured only through the environment like on AWS.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const stateDir = options.stateDir ?? STATE_DIR;
  const logDir = join(stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const log = options.onLog ?? (() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch {
        // keep stopping the rest
      }
    }
    stops.length = 0;
  };

  try {
    // The SDK needs credentials; moto accepts any. Set before anything creates a client.
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    process.env.AWS_REGION = LOCAL_REGION;

    log('starting the local AWS APIs (moto) on 127.0.0.1');
    const moto = await startMoto({ logDir });
    stops.push(() => moto.stop());

    log('starting clamd with the project signature database');
    const clamd = await startClamd({
      logDir,
      workDir: join(stateDir, 'clamd'),
      ...(options.clamdLimits ? { limits: options.clamdLimits } : {}),
    });
    stops.push(() => clamd.stop());

    const clients = createLocalClients(moto.endpoint, LOCAL_REGION);
    log('provisioning buckets, queues, EventBridge rule, SNS topic and the scan-object state machine');
    const layout = await provisionLocalPipeline(clients, {
      endpoint: moto.endpoint,
      region: LOCAL_REGION,
      prefix: 'scanflow-local',
    });

    const serviceEndpoint = options.serviceEndpoint ? await options.serviceEndpoint(moto.endpoint) : moto.endpoint;
    const awsEnv = {
      AWS_ENDPOINT_URL: serviceEndpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
    };

    log('starting the scanner worker');
    const worker = startProcess(
      join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'),
      [join(PROJECT_ROOT, 'scanner-image', 'src', 'main.ts')],
      join(logDir, 'worker.log'),
      {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        // clamd (started with this environment) writes its signature DB date in TZ's zone; the worker reads
        // it in its own, so they must agree.
        ...(process.env.TZ ? { TZ: process.env.TZ } : {}),
        ...awsEnv,
        SCAN_JOBS_QUEUE_URL: layout.queues.scanJobs,
        ...clamdAddressEnvironment(clamd.address),
        MAX_OBJECT_BYTES: String(options.maxObjectBytes),
        HEARTBEAT_INTERVAL_SECONDS: String(options.workerHeartbeatIntervalSeconds ?? 10),
        ...(options.workerConcurrency ? { WORKER_CONCURRENCY: String(options.workerConcurrency) } : {}),
        METRICS_NAMESPACE: 'Scanflow',
        METRICS_DIMENSIONS: 'Pipeline=local',
        SHUTDOWN_GRACE_SECONDS: '10',
        // This machine runs Node 20; the image and Lambda run Node 22, where the SDK has nothing to warn about.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    );
    stops.push(() => worker.stop(15_000));
    // Uploading before the worker polls would only make the first results look slow.
    await waitFor(
      'the scanner worker to start',
      async () => {
        if (worker.hasExited()) throw new GiveUpWaiting(`the worker exited at start; see ${worker.logFile}`);
        return readFileSync(worker.logFile, 'utf8').includes('"message":"worker started"');
      },
      60_000,
      200,
    );

    // start-scan reads its configuration when its module loads, as on a Lambda cold start.
    Object.assign(process.env, {
      ...awsEnv,
      STATE_MACHINE_ARN: layout.stateMachineArn,
      PIPELINE_NAME: 'local',
      PIPELINE_BUCKETS: `${layout.buckets.destination},${layout.buckets.quarantine}`,
      // moto's engine sends CopySource through botocore, which URL-encodes it itself (measured; README, "Local and production").
      COPY_SOURCE_ENCODING: 'raw',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
      // Lambda turns the EMF lines Powertools prints into CloudWatch metrics; nothing does that locally.
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    // Each Lambda handler runs in this process behind its own event source, as its function would on AWS.
    const runLambda = async (functionName: string, queueUrl: string, module: Promise<unknown>) => {
      const { handler } = (await module) as { handler: SqsLambdaHandler };
      log(`running ${functionName} behind an SQS event source`);
      const source = await startSqsEventSource({
        sqs: clients.sqs,
        queueUrl,
        region: LOCAL_REGION,
        functionName,
        handler,
        onError: (error) => log(`${functionName}: ${error instanceof Error ? error.message : String(error)}`),
      });
      stops.push(() => source.stop());
      return source;
    };
    const startScanSource = await runLambda(
      'start-scan',
      layout.queues.scanRequests,
      import('../../functions/start-scan/handler.js'),
    );
    const recordResultSource = await runLambda(
      'record-result',
      layout.queues.resultsMetrics,
      import('../../functions/record-result/handler.js'),
    );

    const runtime: LocalRuntime = {
      layout,
      clients,
      logDir,
      clamd: { address: clamd.address, version: clamd.version },
      worker,
      handlerStats: () => ({ startScan: startScanSource.stats(), recordResult: recordResultSource.stats() }),
      describe: () => ({
        endpoint: layout.endpoint,
        region: layout.region,
        buckets: layout.buckets,
        queues: layout.queues,
        resultsTopicArn: layout.resultsTopicArn,
        stateMachineArn: layout.stateMachineArn,
        clamd: `${describeClamdAddress(clamd.address)} (${clamd.version})`,
        logs: logDir,
        credentials: {
          AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
        },
      }),
      stop: stopAll,
    };
    writeFileSync(join(stateDir, 'local.json'), `${JSON.stringify(runtime.describe(), null, 2)}\n`);
    return runtime;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
