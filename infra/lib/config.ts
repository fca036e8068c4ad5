import { Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { resolveScanPipelineProps, type ScanPipelineProps, ScanPipelinePropsError } from './scan-pipeline-props.js';

/**
 * The app's configuration, read from CDK context (`cdk.json` "context" or `-c name=value`). Values from the
 * command line arrive as strings, values from cdk.json keep their JSON type; both are accepted.
 */
export interface ScanflowAppConfig {
  readonly stackName: string;
  readonly account?: string;
  readonly region?: string;
  readonly availabilityZones?: readonly string[];
  /** Everything except the constructs the app builds from ARNs/names (key, topic, access-log bucket). */
  readonly pipeline: Omit<ScanPipelineProps, 'bucketEncryptionKey' | 'alarmTopic' | 'accessLogsBucket' | 'vpc'>;
  readonly bucketEncryptionKeyArn?: string;
  readonly alarmTopicArn?: string;
  readonly accessLogsBucketName?: string;
}

/** Every context key the app reads, with its type, so unknown keys can be reported as typos. */
export const CONTEXT_KEYS = {
  stackName: 'string',
  account: 'string',
  region: 'string',
  availabilityZones: 'zones',
  pipelineName: 'string',
  existingProtectedBucketNames: 'list',
  existingDestinationBucketName: 'string',
  existingQuarantineBucketName: 'string',
  bucketEncryptionKeyArn: 'string',
  accessLogsBucketName: 'string',
  quarantineReaderRoleArn: 'string',
  stagingReaderRoleArns: 'list',
  quarantineExpirationDays: 'number',
  blockUnscannedReads: 'boolean',
  excludedKeyPrefixes: 'list',
  excludedKeySuffixes: 'list',
  natGateways: 'number',
  minWorkers: 'number',
  maxWorkers: 'number',
  workerConcurrency: 'number',
  workerCpu: 'number',
  workerMemoryMiB: 'number',
  maxObjectBytes: 'number',
  workerEphemeralStorageGiB: 'number',
  freshclamMirrorUrl: 'string',
  scanQueueWaitSeconds: 'number',
  workerHeartbeatIntervalSeconds: 'number',
  scanBaseTimeoutSeconds: 'number',
  scanMinBytesPerSecond: 'number',
  scanMaxTimeoutSeconds: 'number',
  startScanBatchSize: 'number',
  startScanReservedConcurrency: 'number',
  metricsNamespace: 'string',
  oldestScanJobAgeAlarmMinutes: 'number',
  signatureAgeAlarmHours: 'number',
  alarmTopicArn: 'string',
} as const;
type ContextKey = keyof typeof CONTEXT_KEYS;

/** Reads a context value; `undefined` when not set (an empty string from `-c name=` counts as not set). */
export type ContextReader = (key: string) => unknown;

/**
 * Reads and validates the app configuration. With `contextKeys` (every key set), unknown keys are reported
 * too, in the same error as every other problem.
 */
export function readScanflowConfig(read: ContextReader, contextKeys: readonly string[] = []): ScanflowAppConfig {
  const problems: string[] = unknownScanflowContextKeys(contextKeys).map(
    (key) => `context ${key} is not a scanflow setting (see the Deploy section of README.md for the list)`,
  );
  const str = (key: ContextKey): string | undefined => {
    const v = read(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') {
      problems.push(`context ${key} must be a string (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v;
  };
  const num = (key: ContextKey): number | undefined => {
    const v = read(key);
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    if (!Number.isFinite(n)) {
      problems.push(`context ${key} must be a number (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return n;
  };
  const bool = (key: ContextKey): boolean | undefined => {
    const v = read(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    problems.push(`context ${key} must be true or false (got ${JSON.stringify(v)})`);
    return undefined;
  };
  const list = (key: ContextKey): string[] | undefined => {
    const v = read(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'string')
      return v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    if (Array.isArray(v) && v.every((s): s is string => typeof s === 'string')) return v;
    problems.push(`context ${key} must be a comma-separated string or a list of strings (got ${JSON.stringify(v)})`);
    return undefined;
  };

  const region = str('region');
  const zones = (): string[] | undefined => {
    const v = read('availabilityZones');
    if (v === undefined || v === null || v === '') return undefined;
    // Either a list, or a map region -> list so one cdk.json serves several regions.
    if (typeof v === 'object' && !Array.isArray(v)) {
      const forRegion = region ? (v as Record<string, unknown>)[region] : undefined;
      if (forRegion === undefined) return undefined;
      if (Array.isArray(forRegion) && forRegion.every((s): s is string => typeof s === 'string')) return forRegion;
      problems.push(`context availabilityZones.${region} must be a list of zone names`);
      return undefined;
    }
    return list('availabilityZones');
  };

  const expirationDays = num('quarantineExpirationDays');
  const ageMinutes = num('oldestScanJobAgeAlarmMinutes');
  const signatureAgeHours = num('signatureAgeAlarmHours');
  const pipeline: ScanflowAppConfig['pipeline'] = dropUndefined({
    pipelineName: str('pipelineName'),
    existingProtectedBucketNames: list('existingProtectedBucketNames'),
    existingDestinationBucketName: str('existingDestinationBucketName'),
    existingQuarantineBucketName: str('existingQuarantineBucketName'),
    quarantineReaderRoleArn: str('quarantineReaderRoleArn'),
    stagingReaderRoleArns: list('stagingReaderRoleArns'),
    quarantineExpiration: expirationDays === undefined ? undefined : Duration.days(expirationDays),
    blockUnscannedReads: bool('blockUnscannedReads'),
    excludedKeyPrefixes: list('excludedKeyPrefixes'),
    excludedKeySuffixes: list('excludedKeySuffixes'),
    natGateways: num('natGateways'),
    minWorkers: num('minWorkers'),
    maxWorkers: num('maxWorkers'),
    workerConcurrency: num('workerConcurrency'),
    workerCpu: num('workerCpu'),
    workerMemoryMiB: num('workerMemoryMiB'),
    maxObjectBytes: num('maxObjectBytes'),
    workerEphemeralStorageGiB: num('workerEphemeralStorageGiB'),
    freshclamMirrorUrl: str('freshclamMirrorUrl'),
    scanQueueWaitSeconds: num('scanQueueWaitSeconds'),
    workerHeartbeatIntervalSeconds: num('workerHeartbeatIntervalSeconds'),
    scanBaseTimeoutSeconds: num('scanBaseTimeoutSeconds'),
    scanMinBytesPerSecond: num('scanMinBytesPerSecond'),
    scanMaxTimeoutSeconds: num('scanMaxTimeoutSeconds'),
    startScanBatchSize: num('startScanBatchSize'),
    startScanReservedConcurrency: num('startScanReservedConcurrency'),
    metricsNamespace: str('metricsNamespace'),
    oldestScanJobAgeAlarmThreshold: ageMinutes === undefined ? undefined : Duration.minutes(ageMinutes),
    signatureAgeAlarmThreshold: signatureAgeHours === undefined ? undefined : Duration.hours(signatureAgeHours),
  });
  const account = str('account');
  if (account !== undefined && !/^\d{12}$/.test(account))
    problems.push(`context account must be 12 digits (got '${account}')`);
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region))
    problems.push(`context region is not a region name (got '${region}')`);
  if ((account === undefined) !== (region === undefined)) {
    problems.push('context account and region must be given together (or neither, for an environment-agnostic stack)');
  }
  const config: ScanflowAppConfig = dropUndefined({
    stackName: str('stackName') ?? 'Scanflow',
    account,
    region,
    availabilityZones: zones(),
    pipeline,
    bucketEncryptionKeyArn: str('bucketEncryptionKeyArn'),
    alarmTopicArn: str('alarmTopicArn'),
    accessLogsBucketName: str('accessLogsBucketName'),
  });
  if (
    config.bucketEncryptionKeyArn !== undefined &&
    !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[\w-]+$/.test(config.bucketEncryptionKeyArn)
  ) {
    problems.push(`context bucketEncryptionKeyArn must be a KMS key ARN (got '${config.bucketEncryptionKeyArn}')`);
  }
  if (
    config.alarmTopicArn !== undefined &&
    !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/.test(config.alarmTopicArn)
  ) {
    problems.push(`context alarmTopicArn must be an SNS topic ARN (got '${config.alarmTopicArn}')`);
  }
  try {
    resolveScanPipelineProps(pipeline);
  } catch (error) {
    if (!(error instanceof ScanPipelinePropsError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) throw new ScanPipelinePropsError(problems);
  return config;
}

/** Context keys that look like scanflow settings but are not: almost always a typo. */
export function unknownScanflowContextKeys(
  keys: readonly string[],
  known: readonly string[] = Object.keys(CONTEXT_KEYS),
): string[] {
  return keys.filter((k) => !k.includes(':') && !k.startsWith('@') && !k.startsWith('aws-cdk') && !known.includes(k));
}

/** Builds the ScanPipeline props, turning ARNs and names into imported constructs inside `scope`. */
export function pipelinePropsFromConfig(scope: Construct, config: ScanflowAppConfig): ScanPipelineProps {
  return {
    ...config.pipeline,
    ...(config.bucketEncryptionKeyArn
      ? { bucketEncryptionKey: kms.Key.fromKeyArn(scope, 'BucketEncryptionKey', config.bucketEncryptionKeyArn) }
      : {}),
    ...(config.alarmTopicArn ? { alarmTopic: sns.Topic.fromTopicArn(scope, 'AlarmTopic', config.alarmTopicArn) } : {}),
    ...(config.accessLogsBucketName
      ? { accessLogsBucket: s3.Bucket.fromBucketName(scope, 'AccessLogsBucket', config.accessLogsBucketName) }
      : {}),
  };
}

function dropUndefined<T extends object>(value: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
