import { Duration } from 'aws-cdk-lib';
import { DEFAULT_SCAN_TIMING, MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS } from '../../functions/commons/scan-execution.js';
import { readScanflowConfig, unknownScanflowContextKeys } from '../../infra/lib/config.js';
import {
  CLAMAV_MAX_OBJECT_BYTES,
  defaultEphemeralStorageGiB,
  requiredEphemeralStorageGiB,
  resolveScanPipelineProps,
  SCAN_PIPELINE_DEFAULTS,
  ScanPipelinePropsError,
} from '../../infra/lib/scan-pipeline-props.js';
import { workerScalingSteps } from '../../infra/lib/worker-scaling.js';

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof ScanPipelinePropsError) return error.problems;
    throw error;
  }
  throw new Error('expected a ScanPipelinePropsError');
}

describe('ScanPipeline props', () => {
  test('defaults match the start-scan and worker defaults', () => {
    const p = resolveScanPipelineProps();
    expect(p.scanQueueWaitSeconds).toBe(DEFAULT_SCAN_TIMING.queueWaitSeconds);
    expect(p.scanBaseTimeoutSeconds).toBe(DEFAULT_SCAN_TIMING.baseTimeoutSeconds);
    expect(p.scanMinBytesPerSecond).toBe(DEFAULT_SCAN_TIMING.minBytesPerSecond);
    expect(p.scanMaxTimeoutSeconds).toBe(DEFAULT_SCAN_TIMING.maxTimeoutSeconds);
    expect(p.workerHeartbeatIntervalSeconds).toBeLessThanOrEqual(MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS);
    // The age alarm fires while waiting jobs can still get their verdicts.
    expect(p.oldestScanJobAgeAlarmThreshold.toSeconds()).toBeLessThan(p.scanQueueWaitSeconds);
    expect(p.metricsNamespace).toBe('Scanflow');
    expect(p.minWorkers).toBe(0);
    expect(p.workerEphemeralStorageGiB).toBe(21);
  });

  test('one error lists every invalid prop', () => {
    const problems = problemsOf(() =>
      resolveScanPipelineProps({
        pipelineName: '1 bad name',
        minWorkers: 5,
        maxWorkers: 2,
        workerCpu: 1024,
        workerMemoryMiB: 512,
        maxObjectBytes: CLAMAV_MAX_OBJECT_BYTES + 1,
        workerHeartbeatIntervalSeconds: 90,
        workerConcurrency: 33,
        existingProtectedBucketNames: ['Not_A_Bucket', 'same'],
        existingDestinationBucketName: 'same',
        excludedKeyPrefixes: [''],
        quarantineExpiration: Duration.hours(1),
        metricsNamespace: 'AWS/S3',
      }),
    );
    const expected = [
      /pipelineName/,
      /minWorkers \(5\) must not exceed maxWorkers \(2\)/,
      /workerMemoryMiB 512 is not valid with workerCpu 1024/,
      /maxObjectBytes/,
      /workerHeartbeatIntervalSeconds must be an integer from 1 to 60 \(got 90\)/,
      /workerConcurrency/,
      /existingProtectedBucketNames\[0\] is not a valid S3 bucket name/,
      /existingDestinationBucketName 'same' is also a protected bucket/,
      /excludedKeyPrefixes\[0\] is empty/,
      /quarantineExpiration must be at least one day/,
      /metricsNamespace/,
    ];
    for (const pattern of expected) expect(problems.some((p) => pattern.test(p))).toBe(true);
    expect(problems.length).toBeGreaterThanOrEqual(expected.length);
  });

  test('reads are blocked by default: blockUnscannedReads is on unless turned off', () => {
    expect(resolveScanPipelineProps().blockUnscannedReads).toBe(true);
    expect(resolveScanPipelineProps({ blockUnscannedReads: false }).blockUnscannedReads).toBe(false);
  });

  test('staging readers must be IAM role ARNs, like the quarantine reader', () => {
    expect(() =>
      resolveScanPipelineProps({
        stagingReaderRoleArns: ['arn:aws:iam::123456789012:role/Investigators', 'arn:aws:iam::123456789012:role/a/b'],
      }),
    ).not.toThrow();
    const problems = problemsOf(() =>
      resolveScanPipelineProps({
        stagingReaderRoleArns: [
          'arn:aws:iam::123456789012:role/Investigators',
          'arn:aws:iam::123456789012:user/alice',
          '*',
        ],
        quarantineReaderRoleArn: 'SecurityResponders',
      }),
    );
    expect(problems).toEqual([
      "quarantineReaderRoleArn must be an IAM role ARN (got 'SecurityResponders')",
      "stagingReaderRoleArns[1] must be an IAM role ARN (got 'arn:aws:iam::123456789012:user/alice')",
      "stagingReaderRoleArns[2] must be an IAM role ARN (got '*')",
    ]);
  });

  test('with imported protected buckets, the staging readers must fit the printed policy', () => {
    const many = Array.from({ length: 12 }, (_, i) => `arn:aws:iam::123456789012:role/${'r'.repeat(60)}${i}`);
    expect(() => resolveScanPipelineProps({ stagingReaderRoleArns: many })).not.toThrow();
    expect(
      problemsOf(() =>
        resolveScanPipelineProps({ stagingReaderRoleArns: many, existingProtectedBucketNames: ['b-1'] }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^stagingReaderRoleArns hold 1106 characters of ARNs; with imported protected buckets at most 1000 fit/,
      ),
    ]);
  });

  test('refuses scan timeouts that clamd can outlast, naming MaxScanTime, in the same combined error', () => {
    const problems = problemsOf(() =>
      resolveScanPipelineProps({
        scanBaseTimeoutSeconds: 300,
        scanMaxTimeoutSeconds: 1500,
        maxObjectBytes: 1024 ** 3,
        minWorkers: -1,
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^minWorkers/),
        expect.stringMatching(
          /^scanBaseTimeoutSeconds \(300\) must be at least 1200: clamd's MaxScanTime \(900 s, scanner-image\/clamd.conf\) plus 120 s for setup and 180 s for one lost worker/,
        ),
        expect.stringMatching(
          /^scanMaxTimeoutSeconds \(1500\) must be at least 3512 for objects of up to 1073741824 bytes: scanQueueWaitSeconds \(1800 s\) in the queue, .* streaming at scanMinBytesPerSecond/,
        ),
      ]),
    );
  });

  test('the maximum timeout must cover the largest object at the slowest accepted rate', () => {
    expect(() => resolveScanPipelineProps({ maxObjectBytes: CLAMAV_MAX_OBJECT_BYTES })).not.toThrow();
    const problems = problemsOf(() =>
      resolveScanPipelineProps({ maxObjectBytes: CLAMAV_MAX_OBJECT_BYTES, scanMinBytesPerSecond: 100 * 1024 }),
    );
    expect(problems).toEqual([expect.stringMatching(/^scanMaxTimeoutSeconds \(10800\) must be at least 23972 /)]);
  });

  test('the timeout covers the queue wait, and the age alarm fires before a waiting job times out', () => {
    expect(resolveScanPipelineProps({ scanQueueWaitSeconds: 3600 }).scanQueueWaitSeconds).toBe(3600);
    const problems = problemsOf(() =>
      resolveScanPipelineProps({
        scanQueueWaitSeconds: 600,
        oldestScanJobAgeAlarmThreshold: Duration.minutes(10),
        scanMaxTimeoutSeconds: 1700,
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^scanMaxTimeoutSeconds \(1700\) must be at least scanQueueWaitSeconds \+ scanBaseTimeoutSeconds \(1800\)/,
        ),
        expect.stringMatching(
          /^oldestScanJobAgeAlarmThreshold \(600 s\) must be less than scanQueueWaitSeconds \(600\)/,
        ),
      ]),
    );
    expect(problemsOf(() => resolveScanPipelineProps({ scanQueueWaitSeconds: 30 }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^scanQueueWaitSeconds must be an integer from 60 to 43200/)]),
    );
  });

  test('the error message names every problem on its own line', () => {
    const error = (() => {
      try {
        resolveScanPipelineProps({ minWorkers: -1, startScanBatchSize: 0 });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.name).toBe('ScanPipelinePropsError');
    expect(error?.message).toMatch(
      /^Invalid ScanPipeline configuration:\n {2}- minWorkers.*\n {2}- startScanBatchSize/,
    );
  });

  test('signatureAgeAlarmThreshold: 48 h by default, from 6 hours to 7 days', () => {
    expect(resolveScanPipelineProps().signatureAgeAlarmThreshold.toHours()).toBe(48);
    expect(SCAN_PIPELINE_DEFAULTS.signatureAgeAlarmHours).toBe(48);
    for (const accepted of [Duration.hours(6), Duration.hours(24), Duration.days(7)]) {
      expect(() => resolveScanPipelineProps({ signatureAgeAlarmThreshold: accepted })).not.toThrow();
    }
    for (const [refused, hours] of [
      [Duration.minutes(359), 359 / 60],
      [Duration.hours(169), 169],
      [Duration.days(480), 480 * 24],
    ] as const) {
      expect(problemsOf(() => resolveScanPipelineProps({ signatureAgeAlarmThreshold: refused }))).toEqual([
        `signatureAgeAlarmThreshold must be from 6 hours to 7 days (got ${hours} hours): the official database is updated several times a day, and clamd calls a database older than 7 days outdated`,
      ]);
    }
  });

  test('ephemeral storage grows with the largest object and concurrency, within Fargate limits', () => {
    expect(defaultEphemeralStorageGiB(1024 ** 3, 4)).toBe(21);
    expect(defaultEphemeralStorageGiB(2 * 1024 ** 3, 8)).toBe(37);
    expect(defaultEphemeralStorageGiB(CLAMAV_MAX_OBJECT_BYTES, 64)).toBe(200);
  });

  test('ephemeral storage holds, per concurrent scan, the spooled object and what clamd unpacks up to MaxScanSize', () => {
    // MaxScanSize (2 GiB) bounds the unpacking whatever the object size: a small archive can expand to it.
    expect(requiredEphemeralStorageGiB(1024 ** 2, 32)).toBe(70);
    expect(defaultEphemeralStorageGiB(1024 ** 3, 32)).toBe(101);
    // The most a valid configuration can need still fits Fargate's 200 GiB.
    expect(defaultEphemeralStorageGiB(CLAMAV_MAX_OBJECT_BYTES, 32)).toBe(133);
    expect(resolveScanPipelineProps({ workerConcurrency: 32, maxObjectBytes: CLAMAV_MAX_OBJECT_BYTES })).toMatchObject({
      workerEphemeralStorageGiB: 133,
    });
  });

  test('refuses ephemeral storage that cannot hold workerConcurrency scans', () => {
    const problems = problemsOf(() =>
      resolveScanPipelineProps({ workerConcurrency: 16, workerEphemeralStorageGiB: 40 }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^workerEphemeralStorageGiB \(40\) must be at least 53 for workerConcurrency 16 and maxObjectBytes 1073741824: .*MaxScanSize/,
      ),
    ]);
    expect(() => resolveScanPipelineProps({ workerConcurrency: 16, workerEphemeralStorageGiB: 53 })).not.toThrow();
  });
});

describe('worker scaling steps', () => {
  test('one worker per `workerConcurrency` jobs, the minimum when idle', () => {
    expect(workerScalingSteps(0, 3, 4)).toEqual([
      { upper: 0, change: 0 },
      { lower: 1, change: 1 },
      { lower: 5, change: 2 },
      { lower: 9, change: 3 },
    ]);
  });

  test('large pools are spread over at most 12 capacities and reach the maximum', () => {
    const steps = workerScalingSteps(2, 100, 4);
    expect(steps.length).toBeLessThanOrEqual(13);
    expect(steps.at(-1)?.change).toBe(100);
    expect(steps.every((s) => s.change >= 2)).toBe(true);
  });
});

describe('app configuration from context', () => {
  const fromContext = (context: Record<string, unknown>) => readScanflowConfig((key) => context[key]);

  test('command-line strings become typed props', () => {
    const config = fromContext({
      minWorkers: '1',
      maxWorkers: '20',
      blockUnscannedReads: 'true',
      existingProtectedBucketNames: 'partner-uploads, sftp-landing',
      quarantineExpirationDays: '30',
      stagingReaderRoleArns: 'arn:aws:iam::123456789012:role/Investigators, arn:aws:iam::123456789012:role/OnCall',
      account: '123456789012',
      region: 'eu-west-1',
      availabilityZones: { 'eu-west-1': ['eu-west-1a', 'eu-west-1b'] },
    });
    expect(config.pipeline).toMatchObject({
      minWorkers: 1,
      maxWorkers: 20,
      blockUnscannedReads: true,
      existingProtectedBucketNames: ['partner-uploads', 'sftp-landing'],
      stagingReaderRoleArns: ['arn:aws:iam::123456789012:role/Investigators', 'arn:aws:iam::123456789012:role/OnCall'],
    });
    expect(config.pipeline.quarantineExpiration?.toDays()).toBe(30);
    expect(config.availabilityZones).toEqual(['eu-west-1a', 'eu-west-1b']);
    expect(config.stackName).toBe('Scanflow');
  });

  test('signatureAgeAlarmHours becomes signatureAgeAlarmThreshold, validated with the other props', () => {
    expect(fromContext({ signatureAgeAlarmHours: '24' }).pipeline.signatureAgeAlarmThreshold?.toHours()).toBe(24);
    expect(fromContext({ signatureAgeAlarmHours: 12 }).pipeline.signatureAgeAlarmThreshold?.toHours()).toBe(12);
    expect(problemsOf(() => fromContext({ signatureAgeAlarmHours: '2' }))).toEqual([
      expect.stringMatching(/^signatureAgeAlarmThreshold must be from 6 hours to 7 days \(got 2 hours\)/),
    ]);
  });

  test('cdk.json values keep their JSON types', () => {
    const config = fromContext({ minWorkers: 0, excludedKeyPrefixes: ['tmp/'], blockUnscannedReads: false });
    expect(config.pipeline).toMatchObject({ minWorkers: 0, excludedKeyPrefixes: ['tmp/'], blockUnscannedReads: false });
  });

  test('type errors and prop errors arrive together in one error', () => {
    const problems = problemsOf(() =>
      fromContext({
        maxWorkers: 'ten',
        blockUnscannedReads: 'yes',
        account: '123',
        minWorkers: '5',
        workerCpu: '1000',
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/maxWorkers must be a number/),
        expect.stringMatching(/blockUnscannedReads must be true or false/),
        expect.stringMatching(/account must be 12 digits/),
        expect.stringMatching(/account and region must be given together/),
        expect.stringMatching(/workerCpu must be one of/),
      ]),
    );
  });

  test('an unknown key is reported with the other problems', () => {
    const problems = problemsOf(() =>
      readScanflowConfig((key) => ({ maxWorker: '3', minWorkers: '-1' })[key], ['maxWorker', 'minWorkers']),
    );
    expect(problems).toEqual([
      expect.stringMatching(/context maxWorker is not a scanflow setting/),
      expect.stringMatching(/minWorkers must be an integer/),
    ]);
  });

  test('unknown keys are reported; feature flags and CDK keys are not', () => {
    expect(
      unknownScanflowContextKeys([
        'maxWorker',
        'maxWorkers',
        '@aws-cdk/core:checkSecretUsage',
        'aws:cdk:bundling-stacks',
      ]),
    ).toEqual(['maxWorker']);
  });

  test('defaults leave every prop to the construct', () => {
    const config = fromContext({});
    expect(config.pipeline).toEqual({});
    expect(SCAN_PIPELINE_DEFAULTS.pipelineName).toBe('scanflow');
  });
});
