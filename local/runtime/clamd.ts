import { once } from 'node:events';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasSignatures, writeTestDatabase } from '../../scanner-image/signatures/generate.js';
import { connectClamd } from '../../scanner-image/src/clamd-client.js';
import type { ClamdAddress } from '../../scanner-image/src/config.js';
import { PROJECT_ROOT } from './moto.js';
import { freePort, type ManagedProcess, startProcess, waitFor } from './processes.js';

const MiB = 1024 * 1024;

export const IMAGE_CLAMD_CONF = join(PROJECT_ROOT, 'scanner-image', 'clamd.conf');
const CLAMD_CANDIDATES = ['/usr/sbin/clamd', '/usr/local/sbin/clamd', '/usr/bin/clamd'];

/** clamd.conf options a local run may override (size values accept clamd's syntax: `16M`, bytes, …). */
export interface ClamdLimits {
  readonly StreamMaxLength?: string;
  /**
   * Set together with MaxScanSize: startClamd refuses MaxFileSize ≠ MaxScanSize (see scanner-image/clamd.conf).
   * The secondary size limits ({@link FOLLOWING_LIMITS}) follow it unless given themselves.
   */
  readonly MaxFileSize?: string;
  readonly MaxScanSize?: string;
  readonly MaxRecursion?: string;
  /** MaxPartitions follows it unless given itself. */
  readonly MaxFiles?: string;
  /** Milliseconds. */
  readonly MaxScanTime?: string;
  /** Secondary limits: by default they follow MaxFileSize / MaxFiles; startClamd refuses one below it. */
  readonly MaxHTMLNormalize?: string;
  readonly MaxHTMLNoTags?: string;
  readonly MaxScriptNormalize?: string;
  readonly PCREMaxFileSize?: string;
  readonly MaxEmbeddedPE?: string;
  readonly MaxZipTypeRcg?: string;
  readonly MaxPartitions?: string;
  readonly MaxThreads?: string;
  /** `yes` for benchmarks: clamd otherwise answers repeated identical content from its MD5 cache. */
  readonly DisableCache?: 'yes' | 'no';
}

export interface StartClamdOptions {
  readonly logDir: string;
  /** Holds the generated clamd.conf, clamd's temp files and (by default) the signature DB. */
  readonly workDir: string;
  /** Signatures to load. Default `<workDir>/signatures`; the project's test DB is generated there if empty. */
  readonly databaseDir?: string;
  readonly limits?: ClamdLimits;
  /**
   * `socket` (default): a unix socket, as the image places clamd (scanner-image/clamd.conf LocalSocket).
   * `tcp`: 127.0.0.1 on `port` (or a free one), for a client that cannot use a socket.
   */
  readonly transport?: 'socket' | 'tcp';
  readonly port?: number;
  /** Loading a large DB takes a while (about 20 s per million signatures on 2 cores). */
  readonly startTimeoutMs?: number;
}

export interface ClamdServer {
  /** Where clamd listens: its unix socket by default (as in the image), or 127.0.0.1:port. */
  readonly address: ClamdAddress;
  /** clamd's VERSION reply, e.g. `ClamAV 1.4.6`. */
  readonly version: string;
  readonly configFile: string;
  readonly databaseDir: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
  /** Stops clamd if it runs and starts it again on the same address with the same configuration. */
  restart(): Promise<void>;
}

/** Options that say where clamd listens, runs and logs: replaced for a local run, everything else kept. */
const PLACEMENT_OPTIONS = new Set([
  'LocalSocket',
  'LocalSocketGroup',
  'TCPSocket',
  'TCPAddr',
  'User',
  'Foreground',
  'DatabaseDirectory',
  'TemporaryDirectory',
  'LogFile',
  'LogSyslog',
  'PidFile',
]);

/**
 * Limits that must never be below another one, with the one they follow. Above each of these clamd skips a
 * pass (HTML/script normalisation, PCRE, embedded PE search, partitions) and still answers OK, so anything
 * MaxFileSize (or MaxFiles) lets through must be under them too: the image sets them equal
 * (scanner-image/clamd.conf). A local override of MaxFileSize or MaxFiles lowers them with it, keeping the
 * image's relations at a small scale; an override below what it follows is refused.
 */
export const FOLLOWING_LIMITS = {
  MaxHTMLNormalize: 'MaxFileSize',
  MaxHTMLNoTags: 'MaxFileSize',
  MaxScriptNormalize: 'MaxFileSize',
  PCREMaxFileSize: 'MaxFileSize',
  MaxEmbeddedPE: 'MaxFileSize',
  MaxZipTypeRcg: 'MaxFileSize',
  MaxPartitions: 'MaxFiles',
} as const satisfies Partial<Record<keyof ClamdLimits, keyof ClamdLimits>>;

/** A clamd SIZE value in bytes: digits, optionally followed by K, M or G (×1024ⁿ, either case), as clamd reads it. */
export function clamdSizeBytes(value: string): number {
  const match = /^(\d+)([kKmMgG]?)$/.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a clamd size (digits, optionally followed by K, M or G)`);
  const exponent = { '': 0, k: 1, m: 2, g: 3 }[(match[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * 1024 ** exponent;
}

/** Where a local clamd listens: the same kind of unix socket as the image's, or TCP on 127.0.0.1. */
export type LocalListener = { readonly socketPath: string } | { readonly port: number };

/**
 * Derives a local clamd.conf from the image's: same limits, Alert* options and socket mode, listening on a
 * unix socket of our own (as the image does) or on 127.0.0.1, in the foreground, no User (this may run as
 * root; clamd would switch to a user that cannot read our work directory). Pure, so a unit test can hold
 * it to the image's file.
 */
export function localClamdConf(
  imageConf: string,
  placement: { listener: LocalListener; databaseDir: string; tempDir: string },
  requested: ClamdLimits = {},
): string {
  const following: Record<string, string> = {};
  for (const [option, leader] of Object.entries(FOLLOWING_LIMITS)) {
    const leaderValue = requested[leader];
    if (leaderValue !== undefined && requested[option as keyof ClamdLimits] === undefined) {
      following[option] = leaderValue;
    }
  }
  const limits: Record<string, string> = { ...following, ...requested };
  const overridden = new Set(Object.keys(limits));
  const kept = imageConf.split('\n').filter((line) => {
    const option = line.trim().split(/\s+/)[0] ?? '';
    return !PLACEMENT_OPTIONS.has(option) && !overridden.has(option);
  });
  const lines = [
    '# Generated by local/runtime/clamd.ts from scanner-image/clamd.conf. Do not edit; it is rewritten on start.',
    ...kept,
    '# --- local placement ---',
    ...('socketPath' in placement.listener
      ? [`LocalSocket ${placement.listener.socketPath}`]
      : [`TCPSocket ${placement.listener.port}`, 'TCPAddr 127.0.0.1']),
    'Foreground yes',
    `DatabaseDirectory ${placement.databaseDir}`,
    `TemporaryDirectory ${placement.tempDir}`,
    '# --- local limits (secondary limits follow MaxFileSize / MaxFiles unless given) ---',
    ...Object.entries(limits).map(([option, value]) => `${option} ${value}`),
  ];
  const conf = `${lines.join('\n')}\n`;
  const problems = clamdLimitProblems(conf);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return conf;
}

/**
 * The relations scanner-image/clamd.conf keeps between its limits, checked on a whole configuration (the
 * image's or a local one): MaxFileSize = MaxScanSize, and no {@link FOLLOWING_LIMITS} option below what it
 * follows. Empty when they hold.
 */
export function clamdLimitProblems(conf: string): string[] {
  const problems: string[] = [];
  const bytes = (option: string): number | undefined => {
    const value = optionValue(conf, option);
    return value === undefined ? undefined : clamdSizeBytes(value);
  };
  const fileSize = optionValue(conf, 'MaxFileSize');
  const scanSize = optionValue(conf, 'MaxScanSize');
  if (fileSize === undefined || scanSize === undefined || bytes('MaxFileSize') !== bytes('MaxScanSize')) {
    problems.push(
      `clamd MaxFileSize (${fileSize}) must equal MaxScanSize (${scanSize}): otherwise oversized archive members are skipped silently`,
    );
  }
  for (const [option, leader] of Object.entries(FOLLOWING_LIMITS)) {
    const value = optionValue(conf, option);
    const leaderValue = optionValue(conf, leader);
    const why = `above it clamd skips that pass and answers OK without a Heuristics.Limits.Exceeded alert`;
    if (value === undefined) {
      problems.push(
        `clamd ${option} must be set, at least ${leader} (${leaderValue}): clamd's default is lower, and ${why}`,
      );
      continue;
    }
    // PCREMaxFileSize 0 means "no limit".
    if (option === 'PCREMaxFileSize' && clamdSizeBytes(value) === 0) continue;
    const bound = bytes(leader);
    if (bound !== undefined && clamdSizeBytes(value) < bound) {
      problems.push(`clamd ${option} (${value}) must not be below ${leader} (${leaderValue}): ${why}`);
    }
  }
  return problems;
}

/**
 * The value clamd uses for an option: the FIRST one given. clamd 1.4.6 ignores a repeated single-value
 * option (measured: `MaxScanTime 900000` followed by `MaxScanTime 5000` logs "Global time limit set to
 * 900000 milliseconds"), so a value appended after the image's would silently not apply.
 */
export function optionValue(conf: string, option: string): string | undefined {
  for (const line of conf.split('\n')) {
    const [name, ...rest] = line.trim().split(/\s+/);
    if (name === option) return rest.join(' ');
  }
  return undefined;
}

function clamdBinary(): string {
  const found = CLAMD_CANDIDATES.find((path) => existsSync(path));
  if (!found) throw new Error('clamd is not installed; run: bash scripts/bootstrap.sh (apt-get install clamav-daemon)');
  return found;
}

/** One clamd command (`zPING`, `zVERSION`) on its socket or TCP port; resolves with the reply without its NUL. */
export function clamdCommand(address: ClamdAddress, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectClamd(address);
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`clamd ${command} timed out`)));
    socket.on('connect', () => socket.end(`z${command}\0`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\0/g, '').trim()));
  });
}

/**
 * One raw INSTREAM session, with none of the worker in between: `content` (bytes, or a file streamed from
 * disk in 1 MiB chunks) written straight to the socket, which keeps the writes in order, then the
 * terminator; resolves with clamd's reply without its NUL. The benchmark's ceiling and the tests' "what
 * clamd itself answers", independent of the worker's client.
 */
export function clamdInstream(address: ClamdAddress, content: Buffer | { readonly path: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectClamd(address);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\0/g, '').trim()));
    socket.on('connect', async () => {
      try {
        socket.write('zINSTREAM\0');
        const pieces = Buffer.isBuffer(content) ? [content] : createReadStream(content.path, { highWaterMark: MiB });
        for await (const piece of pieces) {
          const data = piece as Buffer;
          // A zero-length frame would end the stream early.
          if (data.length === 0) continue;
          const length = Buffer.alloc(4);
          length.writeUInt32BE(data.length);
          socket.write(length);
          if (!socket.write(data)) await once(socket, 'drain');
        }
        socket.end(Buffer.alloc(4));
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
  });
}

/**
 * A unix socket path must fit in sockaddr_un (108 bytes on Linux). Work directories are usually short
 * enough; a deep checkout gets its socket in a fresh directory under the system temp directory instead.
 */
function socketPathFor(workDir: string): string {
  const preferred = join(workDir, 'clamd.sock');
  return Buffer.byteLength(preferred) < 100 ? preferred : join(mkdtempSync(join(tmpdir(), 'clamd-')), 'clamd.sock');
}

/**
 * Starts a clamd of our own with the project's configuration and signatures, on a unix socket (default,
 * as in the image) or 127.0.0.1, and resolves once it answers PING. Stop it with `stop()` (SIGTERM to its
 * PID only). `restart()` starts it again with the same configuration and address, for tests of a scanner
 * that dies and comes back.
 */
export async function startClamd(options: StartClamdOptions): Promise<ClamdServer> {
  const binary = clamdBinary();
  mkdirSync(options.workDir, { recursive: true });
  const databaseDir = options.databaseDir ?? join(options.workDir, 'signatures');
  if (!hasSignatures(databaseDir)) writeTestDatabase(databaseDir);
  const tempDir = join(options.workDir, 'tmp');
  mkdirSync(tempDir, { recursive: true });

  const listener: LocalListener =
    options.transport === 'tcp'
      ? { port: options.port ?? (await freePort()) }
      : { socketPath: socketPathFor(options.workDir) };
  const address: ClamdAddress =
    'socketPath' in listener
      ? { kind: 'socket', path: listener.socketPath }
      : { kind: 'tcp', host: '127.0.0.1', port: listener.port };
  const configFile = join(options.workDir, 'clamd.conf');
  writeFileSync(
    configFile,
    localClamdConf(readFileSync(IMAGE_CLAMD_CONF, 'utf8'), { listener, databaseDir, tempDir }, options.limits),
  );
  const launch = async (): Promise<{ process: ManagedProcess; version: string }> => {
    const proc = startProcess(binary, ['--config-file', configFile], join(options.logDir, 'clamd.log'));
    try {
      const died = proc.exited.then((code) => {
        throw new Error(`clamd exited (code ${code}) during start; see ${proc.logFile}`);
      });
      // Once started, a later exit is the caller's business (stop()); only a death during start is ours.
      died.catch(() => undefined);
      await Promise.race([
        died,
        waitFor(
          'clamd to answer PING',
          async () => (await clamdCommand(address, 'PING', 1000).catch(() => '')) === 'PONG',
          options.startTimeoutMs ?? 120_000,
          200,
        ),
      ]);
      return { process: proc, version: await clamdCommand(address, 'VERSION') };
    } catch (error) {
      await proc.stop();
      throw error;
    }
  };

  let current = await launch();
  return {
    address,
    get version() {
      return current.version;
    },
    configFile,
    databaseDir,
    get process() {
      return current.process;
    },
    stop: () => current.process.stop(),
    async restart() {
      await current.process.stop();
      current = await launch();
    },
  };
}
