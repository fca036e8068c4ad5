import { readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { type LocalRuntime, type LocalRuntimeOptions, startLocalRuntime } from './runtime/pipeline.js';
import { describePlacement, describeReason, executionNameOf, receiveResults } from './runtime/results.js';
import { outcomeTable, scanThroughPipeline, type Upload, type UploadOutcome } from './runtime/scan-session.js';
import { prepareSampleUploads } from './sample-uploads.js';

const say = (line: string) => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`  · ${line}\n`);

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a whole number > 0');
  return parsed;
}

/** Stops everything we started on Ctrl-C / SIGTERM, then exits. Only our own processes, by PID. */
function stopOnSignals(runtime: LocalRuntime): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the local pipeline…\n`);
    void runtime.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

function printResult({ upload, notification, latencyMs, asExpected }: UploadOutcome, withExpectations: boolean): void {
  if (!notification) return;
  const mark = withExpectations ? (asExpected ? '✓' : '✗') : '•';
  const reason = describeReason(notification);
  say(
    `${mark} ${upload.key} → ${notification.verdict}${reason ? ` (${reason})` : ''}, ${describePlacement(notification)}, ${latencyMs} ms`,
  );
}

async function withRuntime<T>(
  settings: Omit<LocalRuntimeOptions, 'onLog'>,
  work: (runtime: LocalRuntime) => Promise<T>,
): Promise<T> {
  const runtime = await startLocalRuntime({ ...settings, onLog: progress });
  stopOnSignals(runtime);
  try {
    return await work(runtime);
  } finally {
    await runtime.stop();
  }
}

async function runSamples(options: { timeout: number }): Promise<number> {
  const { uploads, maxObjectBytes, clamdLimits, describe } = await prepareSampleUploads();
  return withRuntime({ maxObjectBytes, clamdLimits }, async (runtime) => {
    say(`\nUploading ${uploads.length} sample files to s3://${runtime.layout.buckets.staging}/ …`);
    for (const line of describe) progress(line);
    const outcomes = await scanThroughPipeline(runtime, uploads, {
      timeoutMs: options.timeout * 1000,
      onResult: (outcome) => printResult(outcome, true),
    });
    say(`\n${outcomeTable(outcomes, true)}\n`);
    const mismatches = outcomes.filter((outcome) => !outcome.asExpected).length;
    say(
      mismatches === 0
        ? `All ${outcomes.length} samples got their expected verdict. Logs: ${runtime.logDir}`
        : `${mismatches} of ${outcomes.length} samples did not get their expected verdict. Logs: ${runtime.logDir}`,
    );
    return mismatches === 0 ? 0 : 1;
  });
}

function filesUnder(path: string): string[] {
  const stat = statSync(path);
  if (stat.isFile()) return [path];
  if (!stat.isDirectory()) return [];
  return readdirSync(path).flatMap((entry) => filesUnder(join(path, entry)));
}

async function scanUserFiles(
  paths: readonly string[],
  options: { timeout: number; maxObjectMb: number },
): Promise<number> {
  const uploads: Upload[] = paths.flatMap((path) => {
    const root = resolve(path);
    const base = resolve(root, '..');
    return filesUnder(root).map((file) => ({
      key: `uploads/${relative(base, file) || basename(file)}`,
      source: { path: file },
    }));
  });
  if (uploads.length === 0) {
    say('No files found.');
    return 1;
  }
  return withRuntime({ maxObjectBytes: options.maxObjectMb * 1024 * 1024 }, async (runtime) => {
    say(`\nScanning ${uploads.length} file(s) through the pipeline…`);
    const outcomes = await scanThroughPipeline(runtime, uploads, {
      timeoutMs: options.timeout * 1000,
      onResult: (outcome) => printResult(outcome, false),
    });
    say(`\n${outcomeTable(outcomes, false)}\n`);
    return outcomes.every((outcome) => outcome.notification) ? 0 : 1;
  });
}

async function watch(options: { maxObjectMb: number }): Promise<number> {
  const runtime = await startLocalRuntime({ maxObjectBytes: options.maxObjectMb * 1024 * 1024, onLog: progress });
  stopOnSignals(runtime);
  const info = runtime.describe();
  const { staging } = runtime.layout.buckets;
  say('\nscanflow is running locally. Everything listens on 127.0.0.1 only.\n');
  say(JSON.stringify(info, null, 2));
  say(`\n(also written to .scanflow/local.json)\n\nTry, in another terminal:\n`);
  say(`  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1`);
  say(`  aws --endpoint-url ${runtime.layout.endpoint} s3 cp ./some-file s3://${staging}/`);
  say(`\nVerdicts appear below as they arrive. Ctrl-C stops everything.\n`);
  for (;;) {
    if (runtime.worker.hasExited()) {
      say(`the scanner worker exited; see ${runtime.worker.logFile}`);
      await runtime.stop();
      return 1;
    }
    for (const { notification } of await receiveResults(runtime.clients.sqs, runtime.layout.queues.results)) {
      const reason = describeReason(notification);
      say(
        `• s3://${notification.object.bucket}/${notification.object.key} → ${notification.verdict}${reason ? ` (${reason})` : ''}, ${describePlacement(notification)}, ${executionNameOf(notification.executionArn)}`,
      );
    }
  }
}

const program = new Command()
  .name('scanflow')
  .description('Run the scanflow pipeline on this machine: moto as AWS, a real clamd, the production state machine.')
  .option('--watch', 'keep the pipeline running for your own uploads; print endpoints and write .scanflow/local.json')
  .option('--timeout <seconds>', 'how long to wait for all results', positiveInt, 180)
  .option('--max-object-mb <mb>', 'worker MAX_OBJECT_BYTES for --watch and scan, in MiB', positiveInt, 512)
  .action(async (options: { watch?: boolean; timeout: number; maxObjectMb: number }) => {
    process.exitCode = options.watch ? await watch(options) : await runSamples(options);
  });

program
  .command('scan')
  .description('scan your own files or directories through the local pipeline and print the verdicts')
  .argument('<paths...>', 'files or directories')
  .action(async (paths: string[]) => {
    const options = program.opts<{ timeout: number; maxObjectMb: number }>();
    process.exitCode = await scanUserFiles(paths, options);
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`scanflow: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
