import { Duration, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { CLAMD_LIMITS } from '../../functions/commons/clamd-limits.js';
import {
  DEFAULT_SCAN_TIMING,
  MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS,
  scanTimingProblems,
} from '../../functions/commons/scan-execution.js';

/**
 * ClamAV cannot scan a single stream of 2 GiB or more; anything larger is Unscannable `too-large` by design.
 * The worker enforces the same bound on MAX_OBJECT_BYTES (scanner-image/src/config.ts CLAMAV_MAX_FILE_BYTES).
 */
export const CLAMAV_MAX_OBJECT_BYTES = 2_147_483_645;
const GIB = 1024 ** 3;

/** Fargate's valid CPU/memory pairs (ARM64 supports the same table). */
const FARGATE_MEMORY_BY_CPU: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const values: number[] = [];
  for (let v = from; v <= to; v += step) values.push(v);
  return values;
}

export interface ScanPipelineProps {
  /**
   * Names the pipeline in metric dimensions (`Pipeline=<name>`), the dashboard and alarm names, so several
   * pipelines can share one account and one metrics namespace.
   * @default 'scanflow'
   */
  readonly pipelineName?: string;

  /**
   * Buckets to protect (scan every new object of), imported by name. EventBridge notifications are turned on
   * for them by a custom resource that keeps their existing notification configuration. They must have
   * versioning Enabled: start-scan ends objects without a version id as Error `unversioned-bucket`.
   * Their bucket policy is not changed by this stack (CloudFormation can only replace a policy, not merge
   * one): the statements it needs are published as `ImportedBucketPolicy<n>` outputs for the owner to merge.
   * @default - one new, versioned staging bucket is created and protected
   */
  readonly existingProtectedBucketNames?: readonly string[];
  /**
   * Where Clean objects are promoted to, imported by name.
   * @default - a new destination bucket
   */
  readonly existingDestinationBucketName?: string;
  /**
   * Where Infected objects are moved to, imported by name.
   * @default - a new quarantine bucket readable only by the pipeline and `quarantineReaderRoleArn`
   */
  readonly existingQuarantineBucketName?: string;
  /**
   * Customer-managed key for the buckets this stack creates; the pipeline roles are granted its use.
   * @default - SSE-S3 (Amazon S3 managed keys)
   */
  readonly bucketEncryptionKey?: kms.IKey;
  /**
   * Target of the server access logs of the buckets this stack creates.
   * @default - a new access-log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * The security team's role, the only principal besides the pipeline allowed to read the quarantine bucket.
   * @default - nobody but the pipeline may read quarantined objects
   */
  readonly quarantineReaderRoleArn?: string;
  /**
   * Roles besides the pipeline allowed to read objects in the protected buckets, e.g. the people who
   * investigate objects left there as Unscannable or Error. On a staging bucket this stack creates they are
   * the only other readers; on imported protected buckets they are exempt from `blockUnscannedReads`
   * (there at most 1,000 characters of ARNs in all, so the printed policy fits a CloudFormation output).
   * @default - nobody but the pipeline may read objects that are not scanned Clean
   */
  readonly stagingReaderRoleArns?: readonly string[];
  /**
   * Quarantined objects (and their old versions) are deleted this long after they arrive.
   * @default - kept until someone deletes them
   */
  readonly quarantineExpiration?: Duration;
  /**
   * Imported protected buckets only: their printed policy (`ImportedBucketPolicy<n>`) denies GetObject of
   * objects whose `scan-result` tag is not `Clean` to every principal except the pipeline and
   * `stagingReaderRoleArns`, so readers only ever see scanned, clean objects. Irrelevant for the staging
   * bucket this stack creates: nobody but the pipeline and `stagingReaderRoleArns` may read its objects at
   * all, whatever this says.
   * @default true
   */
  readonly blockUnscannedReads?: boolean;

  /**
   * Keys starting with one of these are never scanned (filtered in the EventBridge rule and in start-scan).
   * @default - none
   */
  readonly excludedKeyPrefixes?: readonly string[];
  /**
   * Keys ending with one of these are never scanned (filtered in start-scan).
   * @default - none
   */
  readonly excludedKeySuffixes?: readonly string[];

  /**
   * VPC for the scanner workers. Needs private subnets with a route to the internet (NAT) or to a private
   * signature mirror plus VPC endpoints for ECR, CloudWatch Logs, SQS, Step Functions and CloudWatch.
   * @default - a new VPC over two availability zones with an S3 gateway endpoint and flow logs
   */
  readonly vpc?: ec2.IVpc;
  /**
   * NAT gateways of the new VPC (ignored with `vpc`). Workers need egress for ECR, AWS APIs and freshclam.
   * @default 1
   */
  readonly natGateways?: number;
  /**
   * Subnets the workers run in.
   * @default - the VPC's private subnets with egress
   */
  readonly workerSubnets?: ec2.SubnetSelection;

  /**
   * Fewest running workers. 0 scales to zero when the scan-jobs queue is empty (the first object after an
   * idle period then waits for a task start, about a minute).
   * @default 0
   */
  readonly minWorkers?: number;
  /**
   * Most running workers.
   * @default 10
   */
  readonly maxWorkers?: number;
  /**
   * Jobs one worker scans at once (`WORKER_CONCURRENCY`); autoscaling targets one worker per this many
   * waiting or running jobs. At most clamd's `MaxThreads` (32, scanner-image/clamd.conf): more would only
   * queue inside clamd while their heartbeats claim progress.
   * @default 4
   */
  readonly workerConcurrency?: number;
  /**
   * Worker task CPU units. clamd loads the full signature DB (~1.3 GB resident) once per task.
   * @default 1024
   */
  readonly workerCpu?: number;
  /**
   * Worker task memory (MiB). Sized for clamd's full DB plus a concurrent reload after freshclam.
   * @default 4096
   */
  readonly workerMemoryMiB?: number;
  /**
   * Largest object scanned (`MAX_OBJECT_BYTES`); larger ones end as Unscannable `too-large`. At most 2 GiB
   * (2,147,483,645 bytes, ClamAV's limit for one stream).
   * @default 1073741824 (1 GiB)
   */
  readonly maxObjectBytes?: number;
  /**
   * Worker ephemeral storage (GiB, 21–200). clamd spools each INSTREAM to a temporary file and unpacks
   * archives and normalised copies next to it, up to its MaxScanSize (2 GiB) per scan whatever the object's
   * size, so it needs room for `workerConcurrency` × (`maxObjectBytes` + 2 GiB), plus 5 GiB for the image
   * and the signature DB. Smaller values are refused.
   * @default - max(21, ceil(workerConcurrency × (maxObjectBytes + 2 GiB) / 1 GiB) + 5), at most 133
   */
  readonly workerEphemeralStorageGiB?: number;
  /**
   * Private signature mirror for freshclam (`FRESHCLAM_MIRROR_URL`).
   * @default - the official ClamAV mirror
   */
  readonly freshclamMirrorUrl?: string;
  /**
   * Scanner image.
   * @default - built from `scanner-image/Dockerfile` (repository root as context) for linux/arm64
   */
  readonly scannerImage?: ecs.ContainerImage;

  /**
   * How long a scan job may wait in scan-jobs for a worker (a scale-out from `minWorkers=0`: alarm, Fargate
   * task start, image pull, signature load; or a burst larger than the pool) and still get its verdict. The
   * ScanObject timeout runs from when the job is queued, so it is this plus the scan (`scanBaseTimeoutSeconds`
   * and size). ScanObject has no heartbeat timeout: its clock would run while the job waits. More than the
   * `oldestScanJobAgeAlarmThreshold`, so the alarm fires before waiting jobs start ending as Error.
   * @default 1800
   */
  readonly scanQueueWaitSeconds?: number;
  /**
   * How often the worker heartbeats (`HEARTBEAT_INTERVAL_SECONDS`): SendTaskHeartbeat, which tells it whether
   * the task is still open, and extending its message's visibility to three intervals. A worker that dies
   * leaves its job invisible for at most that long; then the next worker continues it with the same token.
   * At most 60, so a lost worker costs at most the 180 s the scan timeout allows for it.
   * @default 20
   */
  readonly workerHeartbeatIntervalSeconds?: number;
  /**
   * Scan timeout for any object, however small, once a worker has it (the queue wait comes on top): setup
   * (120 s), one lost worker (180 s) and clamd's MaxScanTime (900 s, scanner-image/clamd.conf), so that clamd
   * reports a scan it cannot finish (Unscannable `limits-exceeded`) before the task times out: at least 1200.
   * @default 1200
   */
  readonly scanBaseTimeoutSeconds?: number;
  /**
   * Slowest accepted transfer rate; bigger objects get proportionally longer timeouts.
   * @default 2097152
   */
  readonly scanMinBytesPerSecond?: number;
  /**
   * Longest scan timeout, whatever the size. At least `scanQueueWaitSeconds` + 1200 +
   * ⌈maxObjectBytes ÷ scanMinBytesPerSecond⌉, for the same reason as `scanBaseTimeoutSeconds`.
   * @default 10800
   */
  readonly scanMaxTimeoutSeconds?: number;

  /**
   * Scan-request messages start-scan takes per invocation.
   * @default 10
   */
  readonly startScanBatchSize?: number;
  /**
   * Reserved concurrency of start-scan, which bounds the StartExecution rate.
   * @default 10
   */
  readonly startScanReservedConcurrency?: number;

  /**
   * CloudWatch namespace of the worker's metrics (`METRICS_NAMESPACE`).
   * @default 'Scanflow'
   */
  readonly metricsNamespace?: string;
  /**
   * The ScanJobsOldestAge alarm fires when a scan job has waited this long. Less than
   * `scanQueueWaitSeconds`, so it fires while waiting jobs can still get their verdicts.
   * @default Duration.minutes(15)
   */
  readonly oldestScanJobAgeAlarmThreshold?: Duration;
  /**
   * The SignatureAge alarm fires when a worker has scanned for 15 minutes with signatures older than this
   * (hours since the loaded database's publication date, `SignatureAgeHours`). From 6 hours (the official
   * daily database is published a few times a day and freshclam checks every 2 hours, so less fires in
   * normal operation) to 7 days (where clamd itself calls the database outdated).
   * @default Duration.hours(48)
   */
  readonly signatureAgeAlarmThreshold?: Duration;
  /**
   * Topic every alarm notifies.
   * @default - alarms have no actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Retention of the log groups this construct creates.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
}

/** Every prop with its default applied (the optional ones that have no default stay optional). */
export type ResolvedScanPipelineProps = ScanPipelineProps &
  Required<
    Pick<
      ScanPipelineProps,
      | 'pipelineName'
      | 'excludedKeyPrefixes'
      | 'excludedKeySuffixes'
      | 'blockUnscannedReads'
      | 'natGateways'
      | 'minWorkers'
      | 'maxWorkers'
      | 'workerConcurrency'
      | 'workerCpu'
      | 'workerMemoryMiB'
      | 'maxObjectBytes'
      | 'workerEphemeralStorageGiB'
      | 'scanQueueWaitSeconds'
      | 'workerHeartbeatIntervalSeconds'
      | 'scanBaseTimeoutSeconds'
      | 'scanMinBytesPerSecond'
      | 'scanMaxTimeoutSeconds'
      | 'startScanBatchSize'
      | 'startScanReservedConcurrency'
      | 'metricsNamespace'
      | 'oldestScanJobAgeAlarmThreshold'
      | 'signatureAgeAlarmThreshold'
    >
  >;

export const SCAN_PIPELINE_DEFAULTS = {
  pipelineName: 'scanflow',
  blockUnscannedReads: true,
  natGateways: 1,
  minWorkers: 0,
  maxWorkers: 10,
  workerConcurrency: 4,
  workerCpu: 1024,
  workerMemoryMiB: 4096,
  maxObjectBytes: GIB,
  scanQueueWaitSeconds: DEFAULT_SCAN_TIMING.queueWaitSeconds,
  workerHeartbeatIntervalSeconds: 20,
  scanBaseTimeoutSeconds: DEFAULT_SCAN_TIMING.baseTimeoutSeconds,
  scanMinBytesPerSecond: DEFAULT_SCAN_TIMING.minBytesPerSecond,
  scanMaxTimeoutSeconds: DEFAULT_SCAN_TIMING.maxTimeoutSeconds,
  startScanBatchSize: 10,
  startScanReservedConcurrency: 10,
  metricsNamespace: 'Scanflow',
  oldestScanJobAgeAlarmMinutes: 15,
  signatureAgeAlarmHours: 48,
} as const;

/** Bounds of signatureAgeAlarmThreshold, in hours (see its documentation). */
export const SIGNATURE_AGE_ALARM_HOURS = { min: 6, max: 7 * 24 } as const;

/** Fargate ephemeral storage bounds (GiB). */
const EPHEMERAL_STORAGE_GIB = { min: 21, max: 200 } as const;
/** The image's layers, clamd's signature DB and freshclam's downloads of the next one, logs. */
const EPHEMERAL_STORAGE_BASE_GIB = 5;

/**
 * The ephemeral storage a worker needs (GiB), before Fargate's bounds. Per concurrent scan clamd writes to
 * its TemporaryDirectory (/tmp, on the task's ephemeral storage): the spooled INSTREAM, up to
 * `maxObjectBytes`, and whatever it unpacks or normalises, up to MaxScanSize. MaxScanSize already counts
 * the spool and every unpacked layer and normalised HTML copy (measured with clamd 1.4.6: a 5 MiB stored
 * zip holding a 5 MiB member exceeds MaxScanSize 8M; a 40 MiB HTML file uses 118 MB of temporary disk and
 * exceeds MaxScanSize 64M), so spool + MaxScanSize also covers a layer written before clamd counts it.
 * MaxScanSize, not the object size, bounds the unpacking: a 1 MiB archive may expand to 2 GiB.
 * At the largest values (32 × (2 GiB + 2 GiB) + 5 = 133) it stays within Fargate's 200.
 */
export function requiredEphemeralStorageGiB(maxObjectBytes: number, workerConcurrency: number): number {
  return (
    Math.ceil((workerConcurrency * (maxObjectBytes + CLAMD_LIMITS.maxScanBytes)) / GIB) + EPHEMERAL_STORAGE_BASE_GIB
  );
}

export function defaultEphemeralStorageGiB(maxObjectBytes: number, workerConcurrency: number): number {
  return Math.min(
    EPHEMERAL_STORAGE_GIB.max,
    Math.max(EPHEMERAL_STORAGE_GIB.min, requiredEphemeralStorageGiB(maxObjectBytes, workerConcurrency)),
  );
}

/** Thrown once with every problem, so a deployer fixes their configuration in one round. */
export class ScanPipelinePropsError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid ScanPipeline configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScanPipelinePropsError';
    this.problems = problems;
  }
}

const BUCKET_NAME = /^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PIPELINE_NAME = /^[A-Za-z][A-Za-z0-9-]{0,31}$/;
const METRICS_NAMESPACE = /^[A-Za-z0-9.\-_/#:]{1,255}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** What the printed policy of an imported protected bucket has room for (tested with the longest values). */
export const STAGING_READER_ARNS_MAX_LENGTH = 1000;

function isConcrete(value: unknown): boolean {
  return !(typeof value === 'string' || typeof value === 'number') || !Token.isUnresolved(value);
}

/** Applies defaults and checks every prop; throws one {@link ScanPipelinePropsError} listing all problems. */
export function resolveScanPipelineProps(props: ScanPipelineProps = {}): ResolvedScanPipelineProps {
  const d = SCAN_PIPELINE_DEFAULTS;
  const workerConcurrency = props.workerConcurrency ?? d.workerConcurrency;
  const maxObjectBytes = props.maxObjectBytes ?? d.maxObjectBytes;
  const resolved: ResolvedScanPipelineProps = {
    ...props,
    pipelineName: props.pipelineName ?? d.pipelineName,
    excludedKeyPrefixes: props.excludedKeyPrefixes ?? [],
    excludedKeySuffixes: props.excludedKeySuffixes ?? [],
    blockUnscannedReads: props.blockUnscannedReads ?? d.blockUnscannedReads,
    natGateways: props.natGateways ?? d.natGateways,
    minWorkers: props.minWorkers ?? d.minWorkers,
    maxWorkers: props.maxWorkers ?? d.maxWorkers,
    workerConcurrency,
    workerCpu: props.workerCpu ?? d.workerCpu,
    workerMemoryMiB: props.workerMemoryMiB ?? d.workerMemoryMiB,
    maxObjectBytes,
    workerEphemeralStorageGiB:
      props.workerEphemeralStorageGiB ?? defaultEphemeralStorageGiB(maxObjectBytes, workerConcurrency),
    scanQueueWaitSeconds: props.scanQueueWaitSeconds ?? d.scanQueueWaitSeconds,
    workerHeartbeatIntervalSeconds: props.workerHeartbeatIntervalSeconds ?? d.workerHeartbeatIntervalSeconds,
    scanBaseTimeoutSeconds: props.scanBaseTimeoutSeconds ?? d.scanBaseTimeoutSeconds,
    scanMinBytesPerSecond: props.scanMinBytesPerSecond ?? d.scanMinBytesPerSecond,
    scanMaxTimeoutSeconds: props.scanMaxTimeoutSeconds ?? d.scanMaxTimeoutSeconds,
    startScanBatchSize: props.startScanBatchSize ?? d.startScanBatchSize,
    startScanReservedConcurrency: props.startScanReservedConcurrency ?? d.startScanReservedConcurrency,
    metricsNamespace: props.metricsNamespace ?? d.metricsNamespace,
    oldestScanJobAgeAlarmThreshold:
      props.oldestScanJobAgeAlarmThreshold ?? Duration.minutes(d.oldestScanJobAgeAlarmMinutes),
    signatureAgeAlarmThreshold: props.signatureAgeAlarmThreshold ?? Duration.hours(d.signatureAgeAlarmHours),
  };
  const problems = scanPipelinePropsProblems(resolved);
  if (props.vpc !== undefined && props.natGateways !== undefined) {
    problems.push('natGateways only applies to the VPC this construct creates; omit it when passing vpc');
  }
  if (problems.length > 0) throw new ScanPipelinePropsError(problems);
  return resolved;
}

function integerIn(problems: string[], name: string, value: number, min: number, max: number): void {
  if (!isConcrete(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
}

export function scanPipelinePropsProblems(p: ResolvedScanPipelineProps): string[] {
  const problems: string[] = [];

  if (!PIPELINE_NAME.test(p.pipelineName)) {
    problems.push(
      `pipelineName must start with a letter and hold at most 32 letters, digits or '-' (got '${p.pipelineName}')`,
    );
  }
  if (!METRICS_NAMESPACE.test(p.metricsNamespace) || p.metricsNamespace.startsWith('AWS/')) {
    problems.push(`metricsNamespace must be a custom CloudWatch namespace (got '${p.metricsNamespace}')`);
  }

  const protectedNames = p.existingProtectedBucketNames ?? [];
  if (p.existingProtectedBucketNames !== undefined && protectedNames.length === 0) {
    problems.push('existingProtectedBucketNames must name at least one bucket when given (omit it to create one)');
  }
  const named: Array<[string, string | undefined]> = [
    ...protectedNames.map((name, i): [string, string] => [`existingProtectedBucketNames[${i}]`, name]),
    ['existingDestinationBucketName', p.existingDestinationBucketName],
    ['existingQuarantineBucketName', p.existingQuarantineBucketName],
  ];
  for (const [prop, name] of named) {
    if (name !== undefined && isConcrete(name) && !BUCKET_NAME.test(name)) {
      problems.push(`${prop} is not a valid S3 bucket name (got '${name}')`);
    }
  }
  if (new Set(protectedNames).size !== protectedNames.length) {
    problems.push('existingProtectedBucketNames lists a bucket twice');
  }
  for (const [prop, name] of [
    ['existingDestinationBucketName', p.existingDestinationBucketName],
    ['existingQuarantineBucketName', p.existingQuarantineBucketName],
  ] as const) {
    if (name !== undefined && protectedNames.includes(name)) {
      problems.push(`${prop} '${name}' is also a protected bucket: the pipeline's own copies would be scanned again`);
    }
  }
  if (
    p.existingDestinationBucketName !== undefined &&
    p.existingDestinationBucketName === p.existingQuarantineBucketName
  ) {
    problems.push('existingDestinationBucketName and existingQuarantineBucketName must be different buckets');
  }
  if (
    p.quarantineReaderRoleArn !== undefined &&
    isConcrete(p.quarantineReaderRoleArn) &&
    !ROLE_ARN.test(p.quarantineReaderRoleArn)
  ) {
    problems.push(`quarantineReaderRoleArn must be an IAM role ARN (got '${p.quarantineReaderRoleArn}')`);
  }
  (p.stagingReaderRoleArns ?? []).forEach((arn, i) => {
    if (isConcrete(arn) && !ROLE_ARN.test(arn)) {
      problems.push(`stagingReaderRoleArns[${i}] must be an IAM role ARN (got '${arn}')`);
    }
  });
  const readerArnsLength = (p.stagingReaderRoleArns ?? []).filter(isConcrete).join('').length;
  if (p.existingProtectedBucketNames !== undefined && readerArnsLength > STAGING_READER_ARNS_MAX_LENGTH) {
    problems.push(
      `stagingReaderRoleArns hold ${readerArnsLength} characters of ARNs; with imported protected buckets at most ${STAGING_READER_ARNS_MAX_LENGTH} fit the printed policy (a CloudFormation output holds 4,096): name fewer roles`,
    );
  }
  if (p.quarantineExpiration !== undefined && p.quarantineExpiration.toDays({ integral: false }) < 1) {
    problems.push('quarantineExpiration must be at least one day');
  }
  if (p.quarantineExpiration !== undefined && p.existingQuarantineBucketName !== undefined) {
    problems.push(
      'quarantineExpiration applies to a new quarantine bucket only; set a lifecycle rule on the imported one',
    );
  }

  for (const [prop, values] of [
    ['excludedKeyPrefixes', p.excludedKeyPrefixes],
    ['excludedKeySuffixes', p.excludedKeySuffixes],
  ] as const) {
    values.forEach((value, i) => {
      if (value.length === 0) problems.push(`${prop}[${i}] is empty: it would exclude every key`);
      if (value.includes(','))
        problems.push(`${prop}[${i}] contains ',' which the start-scan list format cannot carry`);
    });
  }

  // Workers need egress (ECR, AWS APIs, freshclam); without NAT they would need six interface endpoints.
  integerIn(problems, 'natGateways', p.natGateways, 1, 2);
  integerIn(problems, 'minWorkers', p.minWorkers, 0, 1000);
  integerIn(problems, 'maxWorkers', p.maxWorkers, 1, 1000);
  if (p.minWorkers > p.maxWorkers) {
    problems.push(`minWorkers (${p.minWorkers}) must not exceed maxWorkers (${p.maxWorkers})`);
  }
  integerIn(problems, 'workerConcurrency', p.workerConcurrency, 1, 32);
  const memories = FARGATE_MEMORY_BY_CPU[p.workerCpu];
  if (memories === undefined) {
    problems.push(`workerCpu must be one of ${Object.keys(FARGATE_MEMORY_BY_CPU).join(', ')} (got ${p.workerCpu})`);
  } else if (!memories.includes(p.workerMemoryMiB)) {
    problems.push(
      `workerMemoryMiB ${p.workerMemoryMiB} is not valid with workerCpu ${p.workerCpu} (Fargate accepts ${memories[0]}–${memories[memories.length - 1]})`,
    );
  }
  if (p.workerMemoryMiB < 3072) {
    problems.push(
      `workerMemoryMiB must be at least 3072: clamd's full signature DB does not fit in less (got ${p.workerMemoryMiB})`,
    );
  }
  integerIn(problems, 'maxObjectBytes', p.maxObjectBytes, 1, CLAMAV_MAX_OBJECT_BYTES);
  integerIn(
    problems,
    'workerEphemeralStorageGiB',
    p.workerEphemeralStorageGiB,
    EPHEMERAL_STORAGE_GIB.min,
    EPHEMERAL_STORAGE_GIB.max,
  );
  if ([p.workerEphemeralStorageGiB, p.maxObjectBytes, p.workerConcurrency].every(isConcrete)) {
    const needed = requiredEphemeralStorageGiB(p.maxObjectBytes, p.workerConcurrency);
    if (p.workerEphemeralStorageGiB < needed) {
      problems.push(
        `workerEphemeralStorageGiB (${p.workerEphemeralStorageGiB}) must be at least ${needed} for workerConcurrency ${p.workerConcurrency} and maxObjectBytes ${p.maxObjectBytes}: each scan spools the object and clamd unpacks up to its MaxScanSize (2 GiB) next to it, plus ${EPHEMERAL_STORAGE_BASE_GIB} GiB for the image and signatures (or lower workerConcurrency)`,
      );
    }
  }

  integerIn(problems, 'scanQueueWaitSeconds', p.scanQueueWaitSeconds, 60, 43200);
  integerIn(
    problems,
    'workerHeartbeatIntervalSeconds',
    p.workerHeartbeatIntervalSeconds,
    1,
    MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS,
  );
  integerIn(problems, 'scanBaseTimeoutSeconds', p.scanBaseTimeoutSeconds, 30, 86400);
  integerIn(problems, 'scanMinBytesPerSecond', p.scanMinBytesPerSecond, 1024, 10 * GIB);
  integerIn(problems, 'scanMaxTimeoutSeconds', p.scanMaxTimeoutSeconds, 60, 86400);
  if (
    [
      p.scanQueueWaitSeconds,
      p.scanBaseTimeoutSeconds,
      p.scanMinBytesPerSecond,
      p.scanMaxTimeoutSeconds,
      p.maxObjectBytes,
    ].every(isConcrete)
  ) {
    problems.push(
      ...scanTimingProblems(
        {
          queueWaitSeconds: p.scanQueueWaitSeconds,
          baseTimeoutSeconds: p.scanBaseTimeoutSeconds,
          minBytesPerSecond: p.scanMinBytesPerSecond,
          maxTimeoutSeconds: p.scanMaxTimeoutSeconds,
        },
        p.maxObjectBytes,
        {
          queueWait: 'scanQueueWaitSeconds',
          base: 'scanBaseTimeoutSeconds',
          max: 'scanMaxTimeoutSeconds',
          rate: 'scanMinBytesPerSecond',
        },
      ),
    );
  }

  integerIn(problems, 'startScanBatchSize', p.startScanBatchSize, 1, 1000);
  integerIn(problems, 'startScanReservedConcurrency', p.startScanReservedConcurrency, 1, 1000);
  const ageSeconds = p.oldestScanJobAgeAlarmThreshold.toSeconds();
  if (ageSeconds < 60) problems.push('oldestScanJobAgeAlarmThreshold must be at least one minute');
  if (isConcrete(p.scanQueueWaitSeconds) && ageSeconds >= p.scanQueueWaitSeconds) {
    problems.push(
      `oldestScanJobAgeAlarmThreshold (${ageSeconds} s) must be less than scanQueueWaitSeconds (${p.scanQueueWaitSeconds}): the alarm must fire while waiting jobs can still get their verdicts, before they time out as Error`,
    );
  }
  const signatureAgeHours = p.signatureAgeAlarmThreshold.toHours({ integral: false });
  if (signatureAgeHours < SIGNATURE_AGE_ALARM_HOURS.min || signatureAgeHours > SIGNATURE_AGE_ALARM_HOURS.max) {
    problems.push(
      `signatureAgeAlarmThreshold must be from ${SIGNATURE_AGE_ALARM_HOURS.min} hours to ${SIGNATURE_AGE_ALARM_HOURS.max / 24} days (got ${signatureAgeHours} hours): the official database is updated several times a day, and clamd calls a database older than 7 days outdated`,
    );
  }
  if (p.freshclamMirrorUrl !== undefined && !/^https?:\/\/\S+$/.test(p.freshclamMirrorUrl)) {
    problems.push(`freshclamMirrorUrl must be an http(s) URL (got '${p.freshclamMirrorUrl}')`);
  }
  return problems;
}
