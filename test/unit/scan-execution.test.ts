import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import {
  buildScanExecutionInput,
  copySourceFor,
  DEFAULT_SCAN_TIMING,
  executionNameFor,
  MAX_JOB_DELIVERIES,
  MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS,
  MIN_BASE_TIMEOUT_SECONDS,
  SCAN_JOBS_MAX_RECEIVE_COUNT,
  SCAN_OVERHEAD_SECONDS,
  SCAN_SETUP_SECONDS,
  scanTimeoutSeconds,
  scanTimingProblems,
  WORKER_LOSS_SECONDS,
} from '../../functions/commons/scan-execution.js';
import { MAX_VERDICT_TAGS, S3_MAX_TAGS_PER_OBJECT } from '../../functions/commons/verdict.js';
import { CLAMAV_MAX_OBJECT_BYTES, SCAN_PIPELINE_DEFAULTS } from '../../infra/lib/scan-pipeline-props.js';
import { IMAGE_CLAMD_CONF, optionValue } from '../../local/runtime/clamd.js';
import { DEFAULTS as WORKER_DEFAULTS } from '../../scanner-image/src/config.js';

const identity = { bucket: 'staging', key: 'in/report 2024+final%.pdf', versionId: 'v1', etag: '"abc"', size: 10 };

describe('executionNameFor', () => {
  it('is deterministic for the same object version', () => {
    expect(executionNameFor(identity)).toBe(executionNameFor({ ...identity }));
  });

  it('differs when the version or the content differs', () => {
    const names = new Set([
      executionNameFor(identity),
      executionNameFor({ ...identity, versionId: 'v2' }),
      executionNameFor({ ...identity, etag: '"def"' }),
      executionNameFor({ ...identity, bucket: 'other' }),
    ]);
    expect(names.size).toBe(4);
  });

  it.each(['a'.repeat(1024), 'ünïcødé/файл 名前.txt', '////', 'x+y%20z?*<>{}[]"#|~`$&,;:'])(
    'stays within 80 legal characters (key %#)',
    (key) => {
      const name = executionNameFor({ ...identity, key });
      expect(name.length).toBeLessThanOrEqual(80);
      expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    },
  );
});

describe('copySourceFor', () => {
  it('URL-encodes each key segment but keeps the slashes, for S3', () => {
    expect(copySourceFor(identity, 'url')).toBe('staging/in/report%202024%2Bfinal%25.pdf?versionId=v1');
  });

  it('names the current version when no version is given', () => {
    expect(copySourceFor({ bucket: 'b', key: 'a b/c' }, 'url')).toBe('b/a%20b/c');
  });

  it('leaves the key alone for an engine that encodes it itself', () => {
    expect(copySourceFor(identity, 'raw')).toBe('staging/in/report 2024+final%.pdf?versionId=v1');
  });
});

describe('buildScanExecutionInput', () => {
  it('drops scan-* tags the uploader set, in any case, and leaves room for the whole verdict', () => {
    const input = buildScanExecutionInput(
      identity,
      [
        { Key: 'owner', Value: 'me' },
        { Key: 'scan-result', Value: 'Clean' },
        { Key: 'Scan-Result', Value: 'Clean' },
        { Key: 'SCAN-signature', Value: 'none' },
      ],
      { timing: DEFAULT_SCAN_TIMING, copySourceEncoding: 'url' },
    );
    expect(input.object.tags).toEqual([{ Key: 'owner', Value: 'me' }]);
    expect(input.object.droppedTags).toEqual([]);
    expect(input.object.verdictTagRoom).toBe(MAX_VERDICT_TAGS);
    expect(input.failure).toBeNull();
    expect(input.placement).toEqual({ area: 'staging' });
  });

  it.each([
    [7, 7, 3],
    [8, 8, 2],
    [9, 8, 2],
    [10, 8, 2],
  ])(
    'with %i owner tags keeps %i and leaves room for %i verdict tags: the verdict always fits',
    (count, kept, room) => {
      const owner = Array.from({ length: count }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      const input = buildScanExecutionInput(identity, owner, {
        timing: DEFAULT_SCAN_TIMING,
        copySourceEncoding: 'url',
      });
      expect(input.object.tags).toEqual(owner.slice(0, kept));
      expect(input.object.droppedTags).toEqual(owner.slice(kept));
      expect(input.object.verdictTagRoom).toBe(room);
      expect(input.object.tags.length + input.object.verdictTagRoom).toBeLessThanOrEqual(S3_MAX_TAGS_PER_OBJECT);
    },
  );

  it('addresses the null version of an unversioned bucket', () => {
    const { versionId: _ignored, ...unversioned } = identity;
    const input = buildScanExecutionInput(unversioned, [], {
      timing: DEFAULT_SCAN_TIMING,
      copySourceEncoding: 'raw',
    });
    expect(input.object.versionId).toBe('null');
    expect(input.object.copySource).toBe('staging/in/report 2024+final%.pdf?versionId=null');
  });
});

describe('scanTimeoutSeconds', () => {
  it('grows with the object size and is capped', () => {
    const policy = { queueWaitSeconds: 0, baseTimeoutSeconds: 100, minBytesPerSecond: 1000, maxTimeoutSeconds: 500 };
    expect(scanTimeoutSeconds(0, policy)).toBe(100);
    expect(scanTimeoutSeconds(100_000, policy)).toBe(200);
    expect(scanTimeoutSeconds(10_000_000, policy)).toBe(500);
  });

  it('adds the queue wait: the task clock runs while the job waits for a worker', () => {
    const policy = { queueWaitSeconds: 50, baseTimeoutSeconds: 100, minBytesPerSecond: 1000, maxTimeoutSeconds: 500 };
    expect(scanTimeoutSeconds(0, policy)).toBe(150);
    expect(scanTimeoutSeconds(100_000, policy)).toBe(250);
    expect(scanTimeoutSeconds(10_000_000, policy)).toBe(500);
  });

  it('is the only clock of the execution input: no heartbeat timeout', () => {
    const input = buildScanExecutionInput(identity, [], { timing: DEFAULT_SCAN_TIMING, copySourceEncoding: 'url' });
    expect(input.limits).toEqual({ timeoutSeconds: scanTimeoutSeconds(identity.size, DEFAULT_SCAN_TIMING) });
  });
});

describe('the ScanObject task timeout against clamd (scanner-image/clamd.conf)', () => {
  /** Read from the file clamd reads, not from the constant the code uses. */
  const maxScanSeconds = Number(optionValue(readFileSync(IMAGE_CLAMD_CONF, 'utf8'), 'MaxScanTime')) / 1000;
  const rate = DEFAULT_SCAN_TIMING.minBytesPerSecond;
  /** Once a worker has the job; the timeout must also cover the queue wait before it. */
  const longest = (size: number): number => SCAN_OVERHEAD_SECONDS + Math.ceil(size / rate) + maxScanSeconds;
  const largest = Math.max(WORKER_DEFAULTS.maxObjectBytes, CLAMAV_MAX_OBJECT_BYTES);
  /** Every size where the rounding steps, around a spread of magnitudes up to the largest object. */
  const sizes = [
    ...[
      0,
      1,
      1024,
      1024 ** 2,
      10 * 1024 ** 2,
      100 * 1024 ** 2,
      1024 ** 3,
      SCAN_PIPELINE_DEFAULTS.maxObjectBytes,
    ].flatMap((size) => [size, size + 1, Math.max(0, size - 1)]),
    ...[1, 2, 3, 512, 1023].flatMap((n) => [n * rate - 1, n * rate, n * rate + 1]),
    ...Array.from({ length: 200 }, (_, i) => Math.floor((largest * (i + 1)) / 200)),
    largest - 1,
    largest,
  ].filter((size) => size >= 0 && size <= largest);

  it('outlasts a full queue wait and then clamd, for every object size up to the largest the worker accepts, with the defaults', () => {
    expect(maxScanSeconds).toBeGreaterThan(0);
    for (const size of sizes) {
      const timeout = scanTimeoutSeconds(size, DEFAULT_SCAN_TIMING);
      const needed = DEFAULT_SCAN_TIMING.queueWaitSeconds + longest(size);
      expect({ size, enough: timeout >= needed }).toEqual({ size, enough: true });
    }
    const names = { queueWait: 'q', base: 'b', max: 'm', rate: 'r' };
    expect(scanTimingProblems(DEFAULT_SCAN_TIMING, largest, names)).toEqual([]);
  });

  it('derives the default base timeout from MaxScanTime plus setup and one lost worker', () => {
    expect(DEFAULT_SCAN_TIMING.baseTimeoutSeconds).toBe(MIN_BASE_TIMEOUT_SECONDS);
    expect(MIN_BASE_TIMEOUT_SECONDS).toBe(SCAN_OVERHEAD_SECONDS + maxScanSeconds);
    expect(SCAN_OVERHEAD_SECONDS).toBe(SCAN_SETUP_SECONDS + WORKER_LOSS_SECONDS);
    // A lost worker's job is visible again after three heartbeat intervals (the worker's visibility extension).
    expect(WORKER_LOSS_SECONDS).toBe(3 * MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS);
    expect(WORKER_DEFAULTS.heartbeatIntervalSeconds).toBeLessThanOrEqual(MAX_WORKER_HEARTBEAT_INTERVAL_SECONDS);
  });

  it('lets the worker fail a job its workers keep dying on before the queue dead-letters it', () => {
    // The (MAX_JOB_DELIVERIES + 1)th delivery fails the token; one more retries that SendTaskFailure.
    expect(SCAN_JOBS_MAX_RECEIVE_COUNT).toBeGreaterThan(MAX_JOB_DELIVERIES + 1);
  });

  it('names each bound a policy breaks', () => {
    const names = { queueWait: 'WAIT', base: 'BASE', max: 'MAX', rate: 'RATE' };
    const tooShort = {
      ...DEFAULT_SCAN_TIMING,
      queueWaitSeconds: 600,
      baseTimeoutSeconds: 300,
      maxTimeoutSeconds: 1500,
    };
    expect(scanTimingProblems(tooShort, 1024 ** 3, names)).toEqual([
      expect.stringMatching(/^BASE \(300\) must be at least 1200: clamd's MaxScanTime \(900 s/),
      expect.stringMatching(
        /^MAX \(1500\) must be at least 2312 for objects of up to 1073741824 bytes: WAIT \(600 s\)/,
      ),
    ]);
    // Without the largest object the base and the cap are checked.
    expect(scanTimingProblems(tooShort, undefined, names)).toHaveLength(1);
    const capped = { ...DEFAULT_SCAN_TIMING, queueWaitSeconds: 3600, maxTimeoutSeconds: 4000 };
    expect(scanTimingProblems(capped, undefined, names)).toEqual([
      expect.stringMatching(/^MAX \(4000\) must be at least WAIT \+ BASE \(4800\)/),
    ]);
  });
});

describe('executionNameFor readability', () => {
  it('keeps accented letters readable in the slug', () => {
    expect(executionNameFor({ ...identity, key: 'docs/résumé naïve.pdf' })).toMatch(/^resume-naive-pdf-[0-9a-f]{32}$/);
  });
});
