import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  createCloudWatchClient,
  createS3Client,
  createSfnClient,
  createSqsClient,
} from '../../functions/commons/clients.js';
import {
  InvalidScanJobError,
  ScannerUnavailableError,
  TASK_FAILURE_ERRORS,
  WorkerLostError,
} from '../../functions/commons/errors.js';
import { MAX_JOB_DELIVERIES } from '../../functions/commons/scan-execution.js';
import {
  type ScanJob,
  type ScanResult,
  scanJobSchema,
  scanResultSchema,
  taskTokenOf,
} from '../../functions/commons/scan-job.js';
import { formatUploadOrder } from '../../functions/commons/upload-order.js';
import { reasonOf, signatureOf, type Verdict, type VerdictName, verdictTags } from '../../functions/commons/verdict.js';
import { type ClamdScanner, ClamdUnavailableError, createClamdScanner } from './clamd-client.js';
import { createClamdHealth } from './clamd-health.js';
import { type ClamdVersion, parseClamdVersion } from './clamd-reply.js';
import type { WorkerConfig } from './config.js';
import { jsonLogger, type Logger } from './log.js';
import { createMetricsRecorder, type MetricsRecorder } from './metrics.js';
import { type Promotion, promotionFor } from './promotion.js';
import { scanObject } from './scan-object.js';
import { type SignatureMonitor, startSignatureMonitor } from './signature-monitor.js';

export interface WorkerDeps {
  readonly s3?: S3Client;
  readonly sqs?: SQSClient;
  readonly sfn?: SFNClient;
  readonly cloudWatch?: CloudWatchClient;
  readonly scanner?: ClamdScanner;
  readonly log?: Logger;
}

/** Knobs that are not operator configuration; tests shorten them. */
export interface WorkerTuning {
  /** SQS long-poll wait. */
  readonly pollWaitSeconds: number;
  /** Download+scan tries when clamd is unreachable or answers ERROR. */
  readonly scanAttempts: number;
  readonly scanBackoffMs: number;
  /** SendTaskSuccess/Failure tries on throttling or network errors. */
  readonly completeAttempts: number;
  readonly metricsFlushIntervalMs: number;
  /** How long clamd's VERSION reply is reused (freshclam updates it a few times a day). */
  readonly versionTtlMs: number;
  /** How long to wait for clamd to answer PING at start (it may still be loading signatures). */
  readonly clamdStartTimeoutMs: number;
  /** While clamd answers: PING it this often anyway, so an idle worker stops taking jobs for a clamd that is gone. */
  readonly clamdCheckIntervalMs: number;
  /** While clamd does not answer: PING it this often; polling resumes on the first answer. */
  readonly clamdRetryIntervalMs: number;
  /** A PING unanswered for this long failed (a hung clamd can accept connections and never reply). */
  readonly clamdPingTimeoutMs: number;
  /**
   * How long a job already received waits for clamd to answer again before it fails with
   * ScannerUnavailableError (which the state machine retries, likely on another task). Covers a clamd
   * restart with signature load (20-40 s); heartbeats keep the task alive meanwhile.
   */
  readonly clamdOutageWaitMs: number;
  /** How often signature freshness is read from clamd and published (also once at start). */
  readonly signatureCheckIntervalMs: number;
}

export const DEFAULT_TUNING: WorkerTuning = {
  pollWaitSeconds: 20,
  scanAttempts: 3,
  scanBackoffMs: 1000,
  completeAttempts: 4,
  metricsFlushIntervalMs: 60_000,
  versionTtlMs: 60_000,
  clamdStartTimeoutMs: 120_000,
  clamdCheckIntervalMs: 30_000,
  clamdRetryIntervalMs: 1_000,
  clamdPingTimeoutMs: 5_000,
  clamdOutageWaitMs: 60_000,
  signatureCheckIntervalMs: 60_000,
};

export interface RunningWorker {
  /** Stops polling, lets in-flight jobs finish within the shutdown grace, then resolves. Idempotent. */
  stop(): Promise<void>;
  /** Jobs being worked on now. */
  inFlight(): number;
}

/** Completion errors that mean the token can never be completed: the job is over, its message is garbage. */
const DEAD_TOKEN_ERRORS = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);
/**
 * Heartbeat errors that mean the task was closed. InvalidToken is not one by itself: AWS answers it for a
 * token it does not know, but the local engine (moto 5.2.5, measured) answers it for every token of a task
 * without HeartbeatSeconds, live or dead. The job's execution then decides (see checkToken).
 */
const CLOSED_TASK_ERRORS = new Set(['TaskTimedOut', 'TaskDoesNotExist']);

type Completion = 'completed' | 'dead-token' | 'failed';

/** Whether anybody still waits for a job's verdict. `unknown` (the check itself failed) is treated as alive. */
export type TokenState = 'alive' | 'closed' | 'unknown';

/**
 * Starts the scan loop: long-poll scan-jobs, run up to `concurrency` jobs, complete each task token, then
 * delete its message. Resolves once clamd answers and polling has begun.
 */
export async function startWorker(
  config: WorkerConfig,
  deps: WorkerDeps = {},
  tuningOverrides: Partial<WorkerTuning> = {},
): Promise<RunningWorker> {
  const tuning: WorkerTuning = { ...DEFAULT_TUNING, ...tuningOverrides };
  const log = deps.log ?? jsonLogger;
  const s3 = deps.s3 ?? createS3Client();
  const sqs = deps.sqs ?? createSqsClient();
  const sfn = deps.sfn ?? createSfnClient();
  const scanner = deps.scanner ?? (await createClamdScanner(config.clamd));
  const cloudWatch = config.metrics.enabled ? (deps.cloudWatch ?? createCloudWatchClient()) : undefined;
  const metrics: MetricsRecorder = createMetricsRecorder({
    client: cloudWatch,
    namespace: config.metrics.namespace,
    dimensions: config.metrics.dimensions,
    flushIntervalMs: tuning.metricsFlushIntervalMs,
    log,
  });

  await waitForClamd(scanner, tuning.clamdStartTimeoutMs, log);
  let version: { value: ClamdVersion; at: number } = {
    value: parseClamdVersion(await scanner.version()),
    at: Date.now(),
  };
  log.info('worker started', {
    clamd: config.clamd,
    concurrency: config.concurrency,
    maxObjectBytes: config.maxObjectBytes,
    engine: version.value.engine,
    databaseVersion: version.value.databaseVersion,
  });

  // Signature freshness (SignatureAgeHours, …): at start and every minute, whether or not anything is scanned.
  const signatures: SignatureMonitor = startSignatureMonitor({
    readVersion: () => scanner.version(),
    client: cloudWatch,
    namespace: config.metrics.namespace,
    dimensions: config.metrics.dimensions,
    intervalMs: tuning.signatureCheckIntervalMs,
    ...(config.clamdTimeZone ? { timeZone: config.clamdTimeZone } : {}),
    log,
  });

  const running = new Set<Promise<void>>();
  /** Aborted when the shutdown grace runs out: in-flight jobs give up without completing their tokens. */
  const hardStop = new AbortController();
  /** Aborted when stop() begins: ends the poll loop's waits, and a job's wait for a clamd that does not answer. */
  const stopRequested = new AbortController();
  let stopping = false;
  let slotFreed: (() => void) | undefined;

  // While clamd does not answer PING the worker takes no jobs: they stay in the queue for other tasks (or
  // for this one once clamd is back) instead of each failing three times in a few seconds. A long poll
  // already out is left to finish: aborting it does not stop the server from handing its messages to the
  // closed connection (measured with moto; SQS promises nothing better), which hides them for the
  // visibility timeout. What it returns waits in clamdReady like any job in flight.
  const health = createClamdHealth({
    ping: () => scanner.ping(),
    checkIntervalMs: tuning.clamdCheckIntervalMs,
    retryIntervalMs: tuning.clamdRetryIntervalMs,
    pingTimeoutMs: tuning.clamdPingTimeoutMs,
    onChange: (change) => {
      if (change.state === 'down') {
        log.warn('clamd down', {
          detail: 'taking no jobs until clamd answers PING',
          error: change.error,
          inFlight: running.size,
        });
      } else {
        log.info('clamd up', { detail: 'taking jobs again', downMs: change.downMs });
      }
    },
  });

  /** The scanner as jobs use it: a scan failing the way a dead clamd fails makes the gate PING clamd now. */
  const gatedScanner: ClamdScanner = {
    async scan(body, signal) {
      try {
        return await scanner.scan(body, signal);
      } catch (error) {
        if (error instanceof ClamdUnavailableError && !signal?.aborted) health.reportFailure();
        throw error;
      }
    },
    version: () => scanner.version(),
    ping: () => scanner.ping(),
  };

  /**
   * Before each scan try: holds it while clamd does not answer, for at most clamdOutageWaitMs. Gives up at
   * once when the worker is stopping (the entrypoint stops it when clamd exited): the job then fails with
   * ScannerUnavailableError, which the state machine retries, rather than be abandoned at the grace deadline.
   */
  const clamdReady = async (signal: AbortSignal): Promise<void> => {
    if (health.state() === 'up') return;
    // Not AbortSignal.timeout(): inside AbortSignal.any() it can be garbage-collected before it fires
    // (nodejs/node#57736; seen here as a 2 s wait that was still waiting after 60 s). The timer holds this one.
    const waitOver = new AbortController();
    const timer = setTimeout(() => waitOver.abort(), tuning.clamdOutageWaitMs);
    try {
      await health.whenUp(AbortSignal.any([signal, stopRequested.signal, waitOver.signal]));
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new ScannerUnavailableError(
        stopRequested.signal.aborted
          ? 'the worker is stopping and clamd does not answer PING'
          : `clamd did not answer PING for ${tuning.clamdOutageWaitMs} ms`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  };

  const clamdVersion = async (): Promise<ClamdVersion> => {
    if (Date.now() - version.at > tuning.versionTtlMs) {
      try {
        version = { value: parseClamdVersion(await scanner.version()), at: Date.now() };
      } catch (error) {
        if (error instanceof ClamdUnavailableError) health.reportFailure();
        log.warn('clamd VERSION failed; keeping the last known version', { error });
      }
    }
    return version.value;
  };

  const handleMessage = async (message: Message): Promise<void> => {
    const started = Date.now();
    const receipt = message.ReceiptHandle ?? '';
    let body: unknown;
    try {
      body = JSON.parse(message.Body ?? '');
    } catch {
      body = undefined;
    }
    const parsed = scanJobSchema.safeParse(body);
    if (!parsed.success) {
      const token = taskTokenOf(body);
      if (!token) {
        // Nothing to report to: leave it to the queue's redrive policy (dead-letter queue).
        log.error('scan job without a task token; left for the dead-letter queue', { messageId: message.MessageId });
        return;
      }
      const problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      const outcome = await completeToken(sfn, token, { error: new InvalidScanJobError(problem) }, tuning, log);
      if (outcome !== 'failed') await deleteMessage(sqs, config.queueUrl, receipt, log);
      log.error('invalid scan job', { messageId: message.MessageId, problem, completion: outcome });
      metrics.record({ verdict: 'Error', bytes: 0, ms: Date.now() - started });
      return;
    }
    await runJob(parsed.data, receipt, message, started);
  };

  const extendVisibility = (receipt: string, seconds: number) =>
    sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: config.queueUrl,
        ReceiptHandle: receipt,
        VisibilityTimeout: seconds,
      }),
    );

  const runJob = async (job: ScanJob, receipt: string, message: Message, started: number): Promise<void> => {
    const jobAbort = new AbortController();
    const signal = AbortSignal.any([jobAbort.signal, hardStop.signal]);
    const deliveries = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    let tokenDead = false;
    const fields: Record<string, unknown> = {
      bucket: job.object.bucket,
      key: job.object.key,
      versionId: job.object.versionId,
      executionArn: job.executionArn,
      receiveCount: message.Attributes?.ApproximateReceiveCount,
    };
    /**
     * One heartbeat: is the task still open, and keep the message invisible for three more intervals (so a
     * worker that dies leaves its job to the next worker within that long, with the same, still valid token).
     */
    const beat = async (): Promise<{ state: TokenState; detail: string }> => {
      const [token] = await Promise.all([
        checkToken(sfn, job),
        extendVisibility(receipt, visibilitySeconds(config.heartbeatIntervalMs)).catch((error: unknown) => {
          if (isMessageLost(error)) {
            // The message is visible again (or another worker holds it): that worker continues with the same
            // token, so this one stops rather than scan it a second time; it leaves the token and the message alone.
            jobAbort.abort(new Error(`the job's message is no longer this worker's (${errorName(error)})`));
            return;
          }
          log.warn('extending the job visibility failed', { key: job.object.key, error });
        }),
      ]);
      if (token.state === 'unknown') log.warn('token check failed; carrying on', { key: job.object.key, ...token });
      if (token.state === 'closed') {
        // The execution gave up on this task (it ended, timed out or was stopped): stop working for it.
        tokenDead = true;
        jobAbort.abort(new Error(`task is closed (${token.detail})`));
      }
      return token;
    };

    // Before anything is read: a job whose execution already ended (it waited longer than its timeout, or it
    // is a stale redelivery) is dropped here, without a single S3 request.
    const first = await beat();
    if (first.state === 'closed') {
      await deleteMessage(sqs, config.queueUrl, receipt, log);
      log.info('job dropped: its task is closed', { ...fields, token: first.detail, ms: Date.now() - started });
      return;
    }
    // Workers before this one took the job and never finished it (each died, was killed, or lost its hold on
    // the message): a job that takes its worker down every time ends now, as Error, instead of taking more.
    if (deliveries > MAX_JOB_DELIVERIES) {
      const failure = new WorkerLostError(
        `taken by ${deliveries - 1} workers before this one, none of which finished it (MAX_JOB_DELIVERIES ${MAX_JOB_DELIVERIES})`,
      );
      const completion = await completeToken(sfn, job.taskToken, { error: failure }, tuning, log);
      if (completion !== 'failed') await deleteMessage(sqs, config.queueUrl, receipt, log);
      if (completion !== 'dead-token') metrics.record({ verdict: 'Error', bytes: 0, ms: Date.now() - started });
      log.error('job failed: its workers were lost', {
        ...fields,
        error: failure.name,
        detail: failure.message,
        completion,
      });
      return;
    }

    const timer = setInterval(() => void beat(), config.heartbeatIntervalMs);
    let completion: Completion = 'failed';
    let verdict: VerdictName = 'Error';
    let bytes = 0;
    try {
      const outcome = await scanObject(
        job,
        { s3, scanner: gatedScanner },
        {
          maxObjectBytes: config.maxObjectBytes,
          attempts: tuning.scanAttempts,
          backoffMs: tuning.scanBackoffMs,
          signal,
          scannerReady: () => clamdReady(signal),
        },
      );
      // A Clean version is promoted only if nothing newer got there first: decided now, while the worker
      // holds the verdict, so the state machine's Choice needs no extra transitions.
      const promotion = await promotionFor(s3, job, outcome.verdict);
      const result = buildScanResult(outcome.verdict, {
        version: await clamdVersion(),
        bytesScanned: outcome.bytesScanned,
        scanMs: Date.now() - started,
        scannedAt: new Date(),
        object: job.object,
        ...(promotion ? { promotion } : {}),
      });
      verdict = outcome.verdict.verdict;
      bytes = outcome.bytesScanned;
      Object.assign(fields, {
        verdict,
        reason: result.reason,
        signature: result.signature,
        size: outcome.objectSize,
        ...(outcome.detail ? { detail: outcome.detail } : {}),
      });
      completion = await completeToken(sfn, job.taskToken, { result }, tuning, log);
    } catch (error) {
      if (signal.aborted) {
        // Closed task or shutdown deadline: leave the token alone; a dead one is deleted, a live one released.
        completion = tokenDead ? 'dead-token' : 'failed';
        Object.assign(fields, {
          aborted: signal.reason instanceof Error ? signal.reason.message : String(signal.reason),
        });
      } else {
        const failure =
          error instanceof Error && isContractError(error) ? error : new ScannerUnavailableError(String(error));
        Object.assign(fields, { error: failure.name, detail: failure.message });
        completion = await completeToken(sfn, job.taskToken, { error: failure }, tuning, log);
      }
    } finally {
      clearInterval(timer);
    }
    // Delete only once the token is completed (or can never be): otherwise the message comes back and
    // another worker finishes the job.
    if (completion !== 'failed') await deleteMessage(sqs, config.queueUrl, receipt, log);
    else if (hardStop.signal.aborted && !tokenDead) {
      // Abandoned at the shutdown deadline with its token still valid: visible again at once, so the next
      // worker continues it now rather than after the visibility this worker last set.
      await extendVisibility(receipt, 0).catch((error: unknown) =>
        log.warn('releasing the abandoned job failed; it comes back after its visibility timeout', { error }),
      );
    }
    const ms = Date.now() - started;
    if (completion !== 'dead-token') metrics.record({ verdict, bytes, ms });
    log.info('job done', { ...fields, completion, ms, bytes });
  };

  const pollLoop = async (): Promise<void> => {
    let failures = 0;
    while (!stopping) {
      const free = config.concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
        });
        continue;
      }
      if (health.state() !== 'up') {
        await health.whenUp(stopRequested.signal).catch(() => undefined);
        continue;
      }
      let messages: Message[] = [];
      try {
        // Not aborted when stopping begins, only at the grace deadline: an aborted long poll still takes
        // messages off the queue and hands them to the closed connection, which hides them for the queue's
        // visibility timeout (measured with moto: a job started right after a worker stopped waited 30 s
        // for the next one; SQS promises nothing better). The poll ends within pollWaitSeconds anyway.
        const response = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: config.queueUrl,
            MaxNumberOfMessages: Math.min(10, free),
            WaitTimeSeconds: tuning.pollWaitSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: hardStop.signal },
        );
        messages = response.Messages ?? [];
        failures = 0;
      } catch (error) {
        if (stopping) break;
        failures += 1;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
        log.warn('receiving scan jobs failed', { error, retryInMs: delay });
        await sleep(delay, stopRequested.signal);
        continue;
      }
      if (stopping) {
        // Taken by the last poll after stop() began: visible again at once for the rest of the pool.
        await Promise.all(
          messages.map((message) =>
            extendVisibility(message.ReceiptHandle ?? '', 0).catch((error: unknown) =>
              log.warn('handing back a job at stop failed; it comes back after its visibility timeout', { error }),
            ),
          ),
        );
        if (messages.length > 0) log.info('jobs handed back at stop', { count: messages.length });
        break;
      }
      for (const message of messages) {
        const job = handleMessage(message).catch((error: unknown) => {
          log.error('job crashed', { messageId: message.MessageId, error });
        });
        running.add(job);
        void job.finally(() => {
          running.delete(job);
          const wake = slotFreed;
          slotFreed = undefined;
          wake?.();
        });
      }
    }
  };

  const loop = pollLoop().catch((error: unknown) => log.error('poll loop crashed', { error }));

  let stopped: Promise<void> | undefined;
  return {
    inFlight: () => running.size,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        stopRequested.abort();
        slotFreed?.();
        log.info('worker stopping', { inFlight: running.size, graceMs: config.shutdownGraceMs });
        // One deadline from SIGTERM for the last poll and the jobs in flight: ECS kills the task at its stop
        // timeout, whatever is still running.
        const graceTimer = setTimeout(() => {
          log.warn('shutdown grace over; abandoning in-flight jobs to the next worker', { inFlight: running.size });
          hardStop.abort(new Error('shutdown grace over'));
        }, config.shutdownGraceMs);
        await loop;
        await Promise.allSettled([...running]);
        clearTimeout(graceTimer);
        health.close();
        await signatures.close();
        await metrics.close();
        log.info('worker stopped');
      })();
      return stopped;
    },
  };
}

/** What the result says besides the verdict. */
export interface ScanResultContext {
  readonly version: ClamdVersion;
  readonly bytesScanned: number;
  readonly scanMs: number;
  readonly scannedAt: Date;
  /** The scanned object as the job named it: its upload time and the tag room start-scan left. */
  readonly object: Pick<ScanJob['object'], 'uploadedAt' | 'sequencer' | 'verdictTagRoom'>;
  /** Only for Clean: whether and how the version may be promoted. */
  readonly promotion?: Promotion;
}

/**
 * The SendTaskSuccess output (scanResultSchema): the whole result, always in the notification; `tags` is
 * the part that fits on the object, which TagVerdict writes unchanged.
 */
export function buildScanResult(verdict: Verdict, context: ScanResultContext): ScanResult {
  const at = context.scannedAt.toISOString();
  const reason = reasonOf(verdict);
  const signature = signatureOf(verdict);
  return scanResultSchema.parse({
    verdict: verdict.verdict,
    ...(reason ? { reason } : {}),
    ...(signature ? { signature } : {}),
    engine: context.version.engine,
    databaseVersion: context.version.databaseVersion,
    bytesScanned: context.bytesScanned,
    scanMs: context.scanMs,
    scannedAt: at,
    tags: verdictTags(
      verdict,
      {
        scannedAt: at,
        databaseVersion: context.version.databaseVersion,
        uploadedAt: formatUploadOrder(context.object) ?? '',
      },
      context.object.verdictTagRoom,
    ),
    ...(context.promotion ? { promotion: context.promotion } : {}),
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

async function waitForClamd(scanner: ClamdScanner, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let logged = false;
  for (;;) {
    try {
      await scanner.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new ScannerUnavailableError(`clamd did not answer PING within ${timeoutMs} ms`, { cause: error });
      if (!logged) log.warn('waiting for clamd', { error });
      logged = true;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function completeToken(
  sfn: SFNClient,
  taskToken: string,
  outcome: { result: ScanResult } | { error: Error },
  tuning: WorkerTuning,
  log: Logger,
): Promise<Completion> {
  for (let attempt = 1; attempt <= tuning.completeAttempts; attempt += 1) {
    try {
      if ('result' in outcome) {
        await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome.result) }));
      } else {
        await sfn.send(
          new SendTaskFailureCommand({
            taskToken,
            error: outcome.error.name,
            cause: outcome.error.message.slice(0, 32_000),
          }),
        );
      }
      return 'completed';
    } catch (error) {
      const name = errorName(error);
      if (DEAD_TOKEN_ERRORS.has(name)) return 'dead-token';
      log.warn('completing the task token failed', { attempt, error });
      if (attempt < tuning.completeAttempts) await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
  return 'failed';
}

/**
 * Whether the task behind `job` is still open: SendTaskHeartbeat, and when that answers InvalidToken (AWS: a
 * token it does not know; the local engine: any token of a task without HeartbeatSeconds) the job's
 * execution: a token of an execution that is no longer RUNNING can never be completed. Anything that fails
 * the check itself is `unknown`, which the caller treats as alive: a job is only dropped on proof, and the
 * completion at the end still finds a dead token.
 */
export async function checkToken(
  sfn: SFNClient,
  job: Pick<ScanJob, 'taskToken' | 'executionArn'>,
): Promise<{ state: TokenState; detail: string }> {
  try {
    await sfn.send(new SendTaskHeartbeatCommand({ taskToken: job.taskToken }));
    return { state: 'alive', detail: 'heartbeat accepted' };
  } catch (error) {
    const name = errorName(error);
    if (CLOSED_TASK_ERRORS.has(name)) return { state: 'closed', detail: name };
    if (name !== 'InvalidToken') return { state: 'unknown', detail: `heartbeat: ${name || String(error)}` };
    if (job.executionArn === undefined) return { state: 'unknown', detail: 'InvalidToken, and no execution to ask' };
  }
  try {
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: job.executionArn }));
    return described.status === 'RUNNING'
      ? { state: 'alive', detail: 'execution running' }
      : { state: 'closed', detail: `InvalidToken, execution ${described.status ?? 'ended'}` };
  } catch (error) {
    const name = errorName(error);
    if (name === 'ExecutionDoesNotExist') return { state: 'closed', detail: 'InvalidToken, no such execution' };
    return { state: 'unknown', detail: `DescribeExecution: ${name || String(error)}` };
  }
}

async function deleteMessage(sqs: SQSClient, queueUrl: string, receipt: string, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    try {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt }));
      return;
    } catch (error) {
      // If it stays undeleted, the redelivery finds a dead token and is deleted then.
      if (attempt === 3) log.warn('deleting the scan job failed', { error });
      else await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/**
 * Three heartbeat intervals: long enough to survive a missed heartbeat, short enough that a lost worker's job
 * is soon visible to the next worker (WORKER_LOSS_SECONDS allows for three intervals of at most 60 s). SQS
 * caps visibility at 12 hours.
 */
function visibilitySeconds(heartbeatIntervalMs: number): number {
  return Math.min(43_200, Math.max(30, Math.ceil((heartbeatIntervalMs * 3) / 1000)));
}

/** SQS's answers to ChangeMessageVisibility for a receipt that no longer holds the message. */
const LOST_MESSAGE_ERRORS = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight', 'InvalidParameterValue']);

export function isMessageLost(error: unknown): boolean {
  return LOST_MESSAGE_ERRORS.has(errorName(error));
}

function errorName(error: unknown): string {
  return typeof error === 'object' && error !== null && 'name' in error
    ? String((error as { name: unknown }).name)
    : '';
}

function isContractError(error: Error): boolean {
  return TASK_FAILURE_ERRORS.some((contract) => error instanceof contract);
}
