import { z } from 'zod';
import { ConfigurationError } from '../commons/errors.js';
import {
  COPY_SOURCE_ENCODINGS,
  type CopySourceEncoding,
  DEFAULT_SCAN_TIMING,
  type ScanTimingPolicy,
  scanTimingProblems,
} from '../commons/scan-execution.js';

export interface StartScanConfig {
  readonly stateMachineArn: string;
  /** Destination and quarantine: objects the pipeline itself wrote there are never scanned again. */
  readonly pipelineBuckets: ReadonlySet<string>;
  readonly excludedKeyPrefixes: readonly string[];
  readonly excludedKeySuffixes: readonly string[];
  readonly timing: ScanTimingPolicy;
  readonly copySourceEncoding: CopySourceEncoding;
}

const list = z
  .string()
  .optional()
  .transform((value) =>
    (value ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

const positiveInt = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      const parsed = Number(value);
      if (!Number.isInteger(parsed) || parsed <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number > 0, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    });

const environmentSchema = z.object({
  STATE_MACHINE_ARN: z.string({ error: 'required: the scan-object state machine ARN' }).startsWith('arn:', {
    error: 'expected an ARN (arn:…)',
  }),
  PIPELINE_BUCKETS: list,
  EXCLUDED_KEY_PREFIXES: list,
  EXCLUDED_KEY_SUFFIXES: list,
  SCAN_QUEUE_WAIT_SECONDS: positiveInt(DEFAULT_SCAN_TIMING.queueWaitSeconds),
  /** Retired with ScanObject's heartbeat timeout: refused so a stale setting is not silently ignored. */
  SCAN_HEARTBEAT_SECONDS: z
    .string()
    .optional()
    .refine((value) => value === undefined || value.trim() === '', {
      error:
        'no longer used: ScanObject has no heartbeat timeout (its clock would run while a job waits for a worker); set SCAN_QUEUE_WAIT_SECONDS for the wait instead',
    }),
  SCAN_BASE_TIMEOUT_SECONDS: positiveInt(DEFAULT_SCAN_TIMING.baseTimeoutSeconds),
  SCAN_MIN_BYTES_PER_SECOND: positiveInt(DEFAULT_SCAN_TIMING.minBytesPerSecond),
  SCAN_MAX_TIMEOUT_SECONDS: positiveInt(DEFAULT_SCAN_TIMING.maxTimeoutSeconds),
  COPY_SOURCE_ENCODING: z
    .enum(COPY_SOURCE_ENCODINGS, { error: `expected one of: ${COPY_SOURCE_ENCODINGS.join(', ')}` })
    .optional()
    .default('url'),
});

/** Reads and validates start-scan's environment; every bad variable is named in one error. */
export function loadStartScanConfig(env: NodeJS.ProcessEnv): StartScanConfig {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigurationError(`start-scan configuration is invalid:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  const timing: ScanTimingPolicy = {
    queueWaitSeconds: e.SCAN_QUEUE_WAIT_SECONDS,
    baseTimeoutSeconds: e.SCAN_BASE_TIMEOUT_SECONDS,
    minBytesPerSecond: e.SCAN_MIN_BYTES_PER_SECOND,
    maxTimeoutSeconds: e.SCAN_MAX_TIMEOUT_SECONDS,
  };
  const problems: string[] = [];
  // The largest object is the worker's setting, unknown here; the deployment (infra) checks the maximum.
  problems.push(
    ...scanTimingProblems(timing, undefined, {
      queueWait: 'SCAN_QUEUE_WAIT_SECONDS',
      base: 'SCAN_BASE_TIMEOUT_SECONDS',
      max: 'SCAN_MAX_TIMEOUT_SECONDS',
      rate: 'SCAN_MIN_BYTES_PER_SECOND',
    }),
  );
  if (problems.length > 0) {
    throw new ConfigurationError(`start-scan configuration is invalid:\n  ${problems.join('\n  ')}`);
  }
  return {
    stateMachineArn: e.STATE_MACHINE_ARN,
    pipelineBuckets: new Set(e.PIPELINE_BUCKETS),
    excludedKeyPrefixes: e.EXCLUDED_KEY_PREFIXES,
    excludedKeySuffixes: e.EXCLUDED_KEY_SUFFIXES,
    timing,
    copySourceEncoding: e.COPY_SOURCE_ENCODING,
  };
}

/** Why an object is not scanned, or undefined when it must be. */
export function exclusionReason(
  object: { bucket: string; key: string },
  config: Pick<StartScanConfig, 'pipelineBuckets' | 'excludedKeyPrefixes' | 'excludedKeySuffixes'>,
): string | undefined {
  if (config.pipelineBuckets.has(object.bucket)) return `bucket ${object.bucket} is written by the pipeline`;
  const prefix = config.excludedKeyPrefixes.find((p) => object.key.startsWith(p));
  if (prefix !== undefined) return `key prefix ${prefix} is excluded`;
  const suffix = config.excludedKeySuffixes.find((s) => object.key.endsWith(s));
  if (suffix !== undefined) return `key suffix ${suffix} is excluded`;
  return undefined;
}
