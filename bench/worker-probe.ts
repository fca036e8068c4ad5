/**
 * Child process of bench/scan.ts for case (b): the worker's own scan path (HeadObject, GetObject streamed
 * into clamd INSTREAM over its unix socket, reply → verdict), N objects at a time, in a process of
 * its own so its peak RSS is the worker's and nothing else's. SQS and Step Functions are left out on
 * purpose: the local engine runs ~10 executions/s and would measure itself, not the worker.
 *
 * Input: path of a JSON file {endpoint, clamd (address), concurrency, maxObjectBytes, objects[]}. Output: one JSON line.
 */
import { readFileSync } from 'node:fs';
import { createS3Client } from '../functions/commons/clients.js';
import type { ObjectIdentity } from '../functions/commons/scan-job.js';
import { createClamdScanner } from '../scanner-image/src/clamd-client.js';
import type { ClamdAddress } from '../scanner-image/src/config.js';
import { scanObject } from '../scanner-image/src/scan-object.js';

export interface ProbeInput {
  readonly endpoint: string;
  readonly clamd: ClamdAddress;
  readonly concurrency: number;
  readonly maxObjectBytes: number;
  readonly objects: ObjectIdentity[];
  /** A small object scanned once before measuring, to warm code paths and connections. */
  readonly warmup?: ObjectIdentity;
}

export interface ProbeOutput {
  readonly elapsedMs: number;
  readonly bytes: number;
  readonly verdicts: Record<string, number>;
  readonly rssBaseline: number;
  readonly rssPeak: number;
  /** CPU time this process used while measuring (user + system). */
  readonly cpuMs: number;
}

async function main(): Promise<void> {
  const input = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as ProbeInput;
  const s3 = createS3Client({ endpoint: input.endpoint, region: 'us-east-1', forcePathStyle: true });
  const scanner = await createClamdScanner(input.clamd);
  await scanner.ping();
  const options = { maxObjectBytes: input.maxObjectBytes, attempts: 1, backoffMs: 0 };

  // Warm up the code paths and connection pools, then take the baseline.
  if (input.warmup) await scanObject({ object: input.warmup }, { s3, scanner }, options);
  global.gc?.();
  const rssBaseline = process.memoryUsage.rss();
  let rssPeak = rssBaseline;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 10);

  const verdicts: Record<string, number> = {};
  let bytes = 0;
  let next = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const lane = async (): Promise<void> => {
    for (;;) {
      const object = input.objects[next];
      next += 1;
      if (!object) return;
      const outcome = await scanObject({ object }, { s3, scanner }, options);
      bytes += outcome.bytesScanned;
      verdicts[outcome.verdict.verdict] = (verdicts[outcome.verdict.verdict] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: input.concurrency }, lane));
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  const output: ProbeOutput = {
    elapsedMs,
    bytes,
    verdicts,
    rssBaseline,
    rssPeak,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
