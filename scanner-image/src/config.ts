import { availableParallelism } from 'node:os';
import { ConfigurationError } from '../../functions/commons/errors.js';
import { isTimeZone } from './signature-freshness.js';

/**
 * The largest file ClamAV scans at all: clamd clamps MaxFileSize to this value (measured with clamd 1.4.6:
 * "File size limit set to 2147483645 bytes" for any MaxFileSize ≥ 2048M). Anything larger cannot be Clean.
 */
export const CLAMAV_MAX_FILE_BYTES = 2_147_483_645;

/** Where clamd listens. A unix socket, when given, wins over host/port (it is what the image uses). */
export type ClamdAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'socket'; readonly path: string };

export interface MetricDimension {
  readonly Name: string;
  readonly Value: string;
}

export interface WorkerConfig {
  /** The scan-jobs queue the worker long-polls. */
  readonly queueUrl: string;
  readonly clamd: ClamdAddress;
  /** Jobs in flight at once. */
  readonly concurrency: number;
  /** Objects above this size are Unscannable `too-large`, decided from HeadObject alone. */
  readonly maxObjectBytes: number;
  /** SendTaskHeartbeat (and SQS visibility extension) period while a job runs. */
  readonly heartbeatIntervalMs: number;
  readonly metrics: {
    readonly enabled: boolean;
    readonly namespace: string;
    readonly dimensions: readonly MetricDimension[];
  };
  /** After SIGTERM: how long in-flight jobs may take before the process gives up on them and exits. */
  readonly shutdownGraceMs: number;
  /**
   * The time zone clamd writes its signature database date in (it names none). Unset: the worker's own,
   * right when both run in one task or host (the image sets TZ for neither: UTC).
   */
  readonly clamdTimeZone?: string;
}

export const DEFAULTS = {
  clamdHost: '127.0.0.1',
  clamdPort: 3310,
  maxObjectBytes: CLAMAV_MAX_FILE_BYTES,
  heartbeatIntervalSeconds: 20,
  metricsNamespace: 'Scanflow',
  metricsEnabled: true,
  /** ECS waits 30 s (its default stopTimeout) between SIGTERM and SIGKILL; leave room to exit cleanly. */
  shutdownGraceSeconds: 25,
} as const;

/** clamd scans one stream per thread; twice the cores keeps clamd busy while other jobs fetch from S3. */
export function defaultConcurrency(cpus: number = availableParallelism()): number {
  return Math.max(2, cpus * 2);
}

type Env = Readonly<Record<string, string | undefined>>;

/** The environment that makes loadConfig read `address`: the one writer for the local runtime and tests. */
export function clamdAddressEnvironment(address: ClamdAddress): Record<string, string> {
  return address.kind === 'socket'
    ? { CLAMD_SOCKET: address.path }
    : { CLAMD_HOST: address.host, CLAMD_PORT: String(address.port) };
}

/** How a clamd address reads in logs and the local run's summary. */
export function describeClamdAddress(address: ClamdAddress): string {
  return address.kind === 'socket' ? `unix:${address.path}` : `${address.host}:${address.port}`;
}

/**
 * Reads and validates every worker setting from the environment in one pass. All problems are reported
 * together, each naming the variable and what it accepts, so a bad task definition fails at start.
 */
export function loadConfig(env: Env = process.env, cpus: number = availableParallelism()): WorkerConfig {
  const problems: string[] = [];
  const value = (name: string): string | undefined => {
    const raw = env[name];
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  };

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const parsed = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(`${name}="${raw}" is invalid; accepted: an integer from ${min} to ${max}`);
      return fallback;
    }
    return parsed;
  };

  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const lower = raw.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    problems.push(`${name}="${raw}" is invalid; accepted: true or false`);
    return fallback;
  };

  const queueUrl = value('SCAN_JOBS_QUEUE_URL');
  if (queueUrl === undefined) {
    problems.push('SCAN_JOBS_QUEUE_URL is required; accepted: the scan-jobs SQS queue URL (https://…)');
  } else if (!/^https?:\/\/\S+$/.test(queueUrl)) {
    problems.push(`SCAN_JOBS_QUEUE_URL="${queueUrl}" is invalid; accepted: an http(s) SQS queue URL`);
  }

  const socket = value('CLAMD_SOCKET');
  if (socket !== undefined && !socket.startsWith('/')) {
    problems.push(`CLAMD_SOCKET="${socket}" is invalid; accepted: an absolute path to clamd's unix socket`);
  }
  const host = value('CLAMD_HOST') ?? DEFAULTS.clamdHost;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) {
    problems.push(`CLAMD_HOST="${host}" is invalid; accepted: a host name or IP address`);
  }
  const port = integer('CLAMD_PORT', DEFAULTS.clamdPort, 1, 65535);
  const clamd: ClamdAddress = socket !== undefined ? { kind: 'socket', path: socket } : { kind: 'tcp', host, port };

  const concurrency = integer('WORKER_CONCURRENCY', defaultConcurrency(cpus), 1, 256);
  const maxObjectBytes = integer('MAX_OBJECT_BYTES', DEFAULTS.maxObjectBytes, 1, CLAMAV_MAX_FILE_BYTES);
  const heartbeatSeconds = integer('HEARTBEAT_INTERVAL_SECONDS', DEFAULTS.heartbeatIntervalSeconds, 1, 3600);
  const shutdownGraceSeconds = integer('SHUTDOWN_GRACE_SECONDS', DEFAULTS.shutdownGraceSeconds, 0, 3600);

  const namespace = value('METRICS_NAMESPACE') ?? DEFAULTS.metricsNamespace;
  if (namespace.length > 255 || !/^[A-Za-z0-9.\-_/#:]+$/.test(namespace) || namespace.startsWith('AWS/')) {
    problems.push(
      `METRICS_NAMESPACE="${namespace}" is invalid; accepted: 1–255 of A-Z a-z 0-9 . - _ / # :, not starting with AWS/`,
    );
  }
  const dimensions = parseDimensions(value('METRICS_DIMENSIONS'), problems);
  const enabled = boolean('METRICS_ENABLED', DEFAULTS.metricsEnabled);
  const clamdTimeZone = value('CLAMD_TIME_ZONE');
  if (clamdTimeZone !== undefined && !isTimeZone(clamdTimeZone)) {
    problems.push(
      `CLAMD_TIME_ZONE="${clamdTimeZone}" is invalid; accepted: an IANA time zone name, e.g. UTC or Europe/Berlin`,
    );
  }

  if (problems.length > 0) {
    throw new ConfigurationError(`invalid worker configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    queueUrl: queueUrl as string,
    clamd,
    concurrency,
    maxObjectBytes,
    heartbeatIntervalMs: heartbeatSeconds * 1000,
    metrics: { enabled, namespace, dimensions },
    shutdownGraceMs: shutdownGraceSeconds * 1000,
    ...(clamdTimeZone !== undefined ? { clamdTimeZone } : {}),
  };
}

/** CloudWatch allows 30 dimensions per metric; we add `Verdict` to some, so 29 are left for the operator. */
const MAX_OPERATOR_DIMENSIONS = 29;

function parseDimensions(raw: string | undefined, problems: string[]): MetricDimension[] {
  if (raw === undefined) return [];
  const accepted = 'Name=Value pairs separated by commas, e.g. Environment=prod,Cluster=scan';
  const dimensions: MetricDimension[] = [];
  for (const pair of raw.split(',')) {
    const match = /^\s*([^=\s][^=]*?)\s*=\s*(\S.*?)\s*$/.exec(pair);
    if (!match?.[1] || !match[2]) {
      problems.push(`METRICS_DIMENSIONS="${raw}" is invalid at "${pair}"; accepted: ${accepted}`);
      return [];
    }
    if (match[1] === 'Verdict') {
      problems.push(`METRICS_DIMENSIONS="${raw}" is invalid: "Verdict" is reserved for the worker's own dimension`);
      return [];
    }
    dimensions.push({ Name: match[1], Value: match[2] });
  }
  const names = new Set(dimensions.map((d) => d.Name));
  if (names.size !== dimensions.length) {
    problems.push(`METRICS_DIMENSIONS="${raw}" is invalid: a dimension name appears twice; accepted: ${accepted}`);
    return [];
  }
  if (dimensions.length > MAX_OPERATOR_DIMENSIONS) {
    problems.push(
      `METRICS_DIMENSIONS has ${dimensions.length} dimensions; accepted: at most ${MAX_OPERATOR_DIMENSIONS}`,
    );
    return [];
  }
  return dimensions;
}
