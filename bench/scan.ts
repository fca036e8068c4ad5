/**
 * npm run bench:scan [-- --quick] [--signatures N] [--concurrency N]
 *
 * One run, the same objects, a synthetic DB of ~1,000,000 signatures (deterministic), clamd's cache off:
 *   (a) raw clamd INSTREAM from local files          — the scanning ceiling
 *   (b) the worker's scan path (bench/worker-probe)   — HeadObject + GetObject streamed into clamd + verdict
 *   (c) the clamscan command line once per file      — what Lambda-based peers do (sampled: it reloads the DB)
 *   (d) plain GetObject reads from the local S3 API  — the fetching ceiling
 * Cases: 1000 × 10 KiB, 100 × 1 MiB, 1 × 200 MiB, 1 × 1 GiB (memory). `--quick`: 200 × 10 KiB, 20 × 1 MiB,
 * 1 × 200 MiB, no 1 GiB. Everything runs on 127.0.0.1; state lives in .scanflow/bench/.
 */
import { execFile, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { ObjectIdentity } from '../functions/commons/scan-job.js';
import { clamdInstream, startClamd } from '../local/runtime/clamd.js';
import { PROJECT_ROOT, startMoto } from '../local/runtime/moto.js';
import { hasSignatures, writeSyntheticDatabase } from '../scanner-image/signatures/generate.js';
import { defaultConcurrency } from '../scanner-image/src/config.js';
import type { ProbeInput, ProbeOutput } from './worker-probe.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const MB = 1_000_000;

interface BenchCase {
  readonly name: string;
  readonly count: number;
  readonly size: number;
  /** Files the clamscan CLI is run on: each run reloads the whole DB. */
  readonly cliSamples: number;
}

interface Rate {
  readonly files: number;
  readonly bytes: number;
  readonly seconds: number;
  /** CPU time of every process involved (bench/probe, clamd, moto), in ms. */
  readonly cpuMs?: number;
}

/** CPU time (user + system) a process has used so far, from /proc; 0 where /proc is missing. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

function selfCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

interface CaseResult {
  readonly bench: BenchCase;
  readonly a: Rate;
  readonly b: Rate & { readonly rssBaseline: number; readonly rssPeak: number; readonly workerCpuMs: number };
  readonly c: Rate;
  readonly d: Rate;
}

function args(argv: readonly string[]): { quick: boolean; signatures: number; concurrency: number } {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    quick: argv.includes('--quick'),
    signatures: Number(value('--signatures') ?? 1_000_000),
    concurrency: Number(value('--concurrency') ?? defaultConcurrency()),
  };
}

const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};

/** Incompressible content, different in every file, written in 8 MiB pieces (never the whole file in memory). */
function ensureFile(path: string, size: number): void {
  if (existsSync(path) && statSync(path).size === size) return;
  const fd = openSync(path, 'w');
  const piece = Buffer.alloc(Math.min(size, 8 * MiB));
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(piece.length, size - written);
      randomFillSync(piece, 0, n);
      writeSync(fd, piece, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async (): Promise<void> => {
    for (;;) {
      const item = items[next];
      next += 1;
      if (item === undefined) return;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return (performance.now() - started) / 1000;
}

async function upload(s3: S3Client, bucket: string, key: string, path: string, size: number): Promise<ObjectIdentity> {
  const put = await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(path), ContentLength: size }),
  );
  if (!put.VersionId) throw new Error(`s3://${bucket}/${key} got no version id: the bench bucket must be versioned`);
  return { bucket, key, versionId: put.VersionId, etag: put.ETag ?? '', size };
}

function runProbe(input: ProbeInput, inputPath: string): Promise<ProbeOutput> {
  writeFileSync(inputPath, JSON.stringify(input));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'worker-probe.ts'), inputPath],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: PROJECT_ROOT },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as ProbeOutput);
      else reject(new Error(`worker probe exited ${code}: ${out}`));
    });
  });
}

const execFileAsync = promisify(execFile);

/** (c): one clamscan process per file, with the same DB and limits as clamd. */
async function clamscanCli(databaseDir: string, path: string): Promise<void> {
  try {
    await execFileAsync('clamscan', [
      '--no-summary',
      `--database=${databaseDir}`,
      '--max-filesize=2047M',
      '--max-scansize=2047M',
      '--alert-exceeds-max=yes',
      '--disable-cache',
      path,
    ]);
  } catch (error) {
    // Exit 1 = found something, which would make the comparison meaningless.
    throw new Error(`clamscan did not report the file clean: ${String(error)}`);
  }
}

function format(rate: Rate): string {
  return `${(rate.files / rate.seconds).toFixed(1)} files/s · ${(rate.bytes / MB / rate.seconds).toFixed(1)} MB/s`;
}
const throughput = (rate: Rate): number => rate.bytes / rate.seconds;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const options = args(process.argv.slice(2));
  const workDir = join(PROJECT_ROOT, '.scanflow', 'bench');
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  process.env.AWS_REGION ??= 'us-east-1';

  const cases: BenchCase[] = options.quick
    ? [
        { name: '200 × 10 KiB', count: 200, size: 10 * KiB, cliSamples: 3 },
        { name: '20 × 1 MiB', count: 20, size: MiB, cliSamples: 3 },
        { name: '1 × 200 MiB', count: 1, size: 200 * MiB, cliSamples: 1 },
      ]
    : [
        { name: '1000 × 10 KiB', count: 1000, size: 10 * KiB, cliSamples: 5 },
        { name: '100 × 1 MiB', count: 100, size: MiB, cliSamples: 5 },
        { name: '1 × 200 MiB', count: 1, size: 200 * MiB, cliSamples: 1 },
        { name: '1 × 1 GiB', count: 1, size: GiB, cliSamples: 1 },
      ];

  const databaseDir = join(workDir, `signatures-${options.signatures}`);
  if (!hasSignatures(databaseDir)) {
    log(`generating ${options.signatures} synthetic signatures in ${databaseDir}`);
    await writeSyntheticDatabase(databaseDir, options.signatures);
  }

  log('writing the objects to local files');
  const files = new Map<BenchCase, string[]>();
  for (const bench of cases) {
    const dir = join(workDir, 'files', `${bench.count}x${bench.size}`);
    mkdirSync(dir, { recursive: true });
    const paths = Array.from({ length: bench.count }, (_, i) => join(dir, `${i}.bin`));
    for (const path of paths) ensureFile(path, bench.size);
    files.set(bench, paths);
  }
  const warmupPath = join(workDir, 'files', 'warmup.bin');
  ensureFile(warmupPath, 10 * KiB);

  log('starting moto and clamd (synthetic DB, cache off)');
  const [moto, clamd] = await Promise.all([
    startMoto({ logDir }),
    startClamd({
      logDir,
      workDir: join(workDir, 'clamd'),
      databaseDir,
      limits: { DisableCache: 'yes' },
      startTimeoutMs: 600_000,
    }),
  ]);
  const results: CaseResult[] = [];
  try {
    // Plain (not aws-chunked) uploads: moto decodes aws-chunked bodies ~100× slower (200 MiB: 175 s vs 1.7 s).
    const s3 = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const bucket = 'scanflow-bench';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // Versioned like every pipeline bucket: the worker refuses an object without a version id unread.
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    log('uploading the objects to the local S3 API');
    const objects = new Map<BenchCase, ObjectIdentity[]>();
    for (const bench of cases) {
      const paths = files.get(bench) ?? [];
      const identities: ObjectIdentity[] = new Array(paths.length);
      await pool(
        paths.map((path, i) => ({ path, i })),
        16,
        async ({ path, i }) => {
          identities[i] = await upload(s3, bucket, `${bench.count}x${bench.size}/${i}.bin`, path, bench.size);
        },
      );
      objects.set(bench, identities);
    }
    const warmup = await upload(s3, bucket, 'warmup.bin', warmupPath, 10 * KiB);

    for (const bench of cases) {
      const paths = files.get(bench) ?? [];
      const identities = objects.get(bench) ?? [];
      const total = bench.count * bench.size;
      const concurrency = Math.min(options.concurrency, bench.count);
      const servers = (): number => processCpuMs(clamd.process.pid) + processCpuMs(moto.process.pid);
      log(`${bench.name}: (a) raw clamd INSTREAM`);
      await clamdInstream(clamd.address, { path: warmupPath });
      let cpu = servers() + selfCpuMs();
      const aSeconds = await pool(paths, concurrency, async (path) => {
        // (a): INSTREAM straight from the file, on the same socket as the worker.
        const reply = await clamdInstream(clamd.address, { path });
        if (reply !== 'stream: OK') throw new Error(`raw INSTREAM of ${path}: ${reply}`);
      });

      const aCpu = servers() + selfCpuMs() - cpu;

      log(`${bench.name}: (d) plain GetObject`);
      cpu = servers() + selfCpuMs();
      const dSeconds = await pool(identities, concurrency, async (object) => {
        const response = await s3.send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }));
        for await (const _chunk of response.Body as Readable) {
          // discard: the fetching ceiling
        }
      });

      const dCpu = servers() + selfCpuMs() - cpu;

      log(`${bench.name}: (b) worker scan path, concurrency ${concurrency}`);
      cpu = servers();
      const probe = await runProbe(
        {
          endpoint: moto.endpoint,
          clamd: clamd.address,
          concurrency,
          maxObjectBytes: 2_147_483_645,
          objects: identities,
          warmup,
        },
        join(workDir, 'probe-input.json'),
      );
      // Includes the probe's start-up and warm-up on the servers' side; small next to the measured work.
      const bCpu = servers() - cpu + probe.cpuMs;
      if ((probe.verdicts.Clean ?? 0) !== bench.count) {
        throw new Error(`worker verdicts for ${bench.name}: ${JSON.stringify(probe.verdicts)}`);
      }

      log(`${bench.name}: (c) clamscan CLI on ${bench.cliSamples} file(s)`);
      const samples = paths.slice(0, bench.cliSamples);
      const cSeconds = await pool(samples, 1, (path) => clamscanCli(databaseDir, path));

      results.push({
        bench,
        a: { files: bench.count, bytes: total, seconds: aSeconds, cpuMs: aCpu },
        b: {
          files: bench.count,
          bytes: probe.bytes,
          seconds: probe.elapsedMs / 1000,
          cpuMs: bCpu,
          workerCpuMs: probe.cpuMs,
          rssBaseline: probe.rssBaseline,
          rssPeak: probe.rssPeak,
        },
        c: { files: samples.length, bytes: samples.length * bench.size, seconds: cSeconds },
        d: { files: bench.count, bytes: total, seconds: dSeconds, cpuMs: dCpu },
      });
    }
  } finally {
    await Promise.allSettled([moto.stop(), clamd.stop()]);
  }

  const lines = [
    '',
    `scanflow bench:scan — ${options.signatures.toLocaleString('en')} synthetic signatures, ${availableParallelism()} CPUs, worker concurrency ${options.concurrency}${options.quick ? ', --quick' : ''}`,
    '(c) is sampled (one clamscan process per file, each reloading the DB); its rate is per file, sequential.',
    '',
    '| case | (a) raw clamd INSTREAM | (b) worker | (c) clamscan CLI | (d) S3 GetObject | (b)/min(a,d) | (b)/(c) | worker RSS peak (growth) |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const ceiling = Math.min(throughput(r.a), throughput(r.d));
      const vsCli = r.b.files / r.b.seconds / (r.c.files / r.c.seconds);
      return `| ${r.bench.name} | ${format(r.a)} | ${format(r.b)} | ${format(r.c)} | ${format(r.d)} | ${(throughput(r.b) / ceiling).toFixed(2)} | ${vsCli.toFixed(0)}× | ${mib(r.b.rssPeak)} (+${mib(r.b.rssPeak - r.b.rssBaseline)}) |`;
    }),
    '',
    'CPU per file, all processes (clamd + moto + client), ms — and the most files/s that CPU allows on this machine:',
    '',
    '| case | (a) raw | (d) GetObject | (b) worker | of which the worker process | (b) CPU-bound ceiling | (b) share of that ceiling |',
    '|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const perFile = (rate: Rate): number => (rate.cpuMs ?? 0) / rate.files;
      const ceiling = (availableParallelism() * 1000) / perFile(r.b);
      return `| ${r.bench.name} | ${perFile(r.a).toFixed(1)} | ${perFile(r.d).toFixed(1)} | ${perFile(r.b).toFixed(1)} | ${(r.b.workerCpuMs / r.b.files).toFixed(1)} | ${ceiling.toFixed(1)} files/s | ${(r.b.files / r.b.seconds / ceiling).toFixed(2)} |`;
    }),
    '',
  ];
  const twoHundred = results.find((r) => r.bench.size === 200 * MiB);
  if (twoHundred)
    lines.push(`worker/raw throughput ratio: ${(throughput(twoHundred.b) / throughput(twoHundred.a)).toFixed(2)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
