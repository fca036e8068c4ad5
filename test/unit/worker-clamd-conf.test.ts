import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CLAMD_LIMITS } from '../../functions/commons/clamd-limits.js';
import { MIN_BASE_TIMEOUT_SECONDS } from '../../functions/commons/scan-execution.js';
import { CLAMAV_MAX_OBJECT_BYTES } from '../../infra/lib/scan-pipeline-props.js';
import {
  clamdLimitProblems,
  clamdSizeBytes,
  FOLLOWING_LIMITS,
  IMAGE_CLAMD_CONF,
  localClamdConf,
  optionValue,
} from '../../local/runtime/clamd.js';
import { DEFAULT_SCAN_IDLE_TIMEOUT_MS } from '../../scanner-image/src/clamd-client.js';
import { CLAMAV_MAX_FILE_BYTES, DEFAULTS } from '../../scanner-image/src/config.js';

const image = readFileSync(IMAGE_CLAMD_CONF, 'utf8');
const placement = { listener: { socketPath: '/tmp/w/clamd.sock' }, databaseDir: '/tmp/db', tempDir: '/tmp/t' };
const tcpPlacement = { ...placement, listener: { port: 40000 } };

/** Option names in the order they appear (comments and blank lines skipped). */
function optionNames(conf: string): string[] {
  return conf
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(/\s+/)[0] ?? '');
}

describe('optionValue', () => {
  it('reads the first value of a repeated option, as clamd does (it ignores the repetition)', () => {
    expect(optionValue('MaxScanTime 900000\nMaxScanTime 5000\n', 'MaxScanTime')).toBe('900000');
    expect(optionValue('# MaxScanTime 1\nMaxScanTime 2\n', 'MaxScanTime')).toBe('2');
    expect(optionValue('MaxFiles 1\n', 'MaxScanTime')).toBeUndefined();
  });
});

describe('scanner-image/clamd.conf', () => {
  it('sets every option once: clamd would ignore a second value', () => {
    const names = optionNames(image);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  it('never lets an oversized archive member pass: MaxFileSize = MaxScanSize and AlertExceedsMax', () => {
    expect(optionValue(image, 'MaxFileSize')).toBe(optionValue(image, 'MaxScanSize'));
    expect(optionValue(image, 'AlertExceedsMax')).toBe('yes');
  });

  it('reports encrypted content instead of answering OK', () => {
    expect(optionValue(image, 'AlertEncrypted')).toBe('yes');
    expect(optionValue(image, 'AlertEncryptedArchive')).toBe('yes');
    expect(optionValue(image, 'AlertEncryptedDoc')).toBe('yes');
  });

  it("accepts streams up to the worker's default object limit", () => {
    expect(Number(optionValue(image, 'StreamMaxLength'))).toBeGreaterThanOrEqual(DEFAULTS.maxObjectBytes);
    expect(Number(optionValue(image, 'MaxFileSize'))).toBe(CLAMAV_MAX_FILE_BYTES);
  });

  it('scans in full any object a worker or a deployment may accept: max object ≤ StreamMaxLength ≤ MaxFileSize', () => {
    const largestAccepted = Math.max(DEFAULTS.maxObjectBytes, CLAMAV_MAX_FILE_BYTES, CLAMAV_MAX_OBJECT_BYTES);
    const streamMax = clamdSizeBytes(optionValue(image, 'StreamMaxLength') ?? '');
    expect(largestAccepted).toBeLessThanOrEqual(streamMax);
    expect(streamMax).toBeLessThanOrEqual(clamdSizeBytes(optionValue(image, 'MaxFileSize') ?? ''));
  });

  it('sets every secondary limit to what it follows (MaxFileSize, MaxFiles): none binds first, silently', () => {
    expect(clamdLimitProblems(image)).toEqual([]);
    for (const [option, leader] of Object.entries(FOLLOWING_LIMITS)) {
      expect({ option, value: optionValue(image, option) }).toEqual({ option, value: optionValue(image, leader) });
    }
    for (const option of ['MaxHTMLNormalize', 'MaxHTMLNoTags', 'MaxScriptNormalize', 'PCREMaxFileSize']) {
      expect({ option, value: Number(optionValue(image, option)) }).toEqual({ option, value: CLAMAV_MAX_FILE_BYTES });
    }
  });

  it("pins the limits it leaves at ClamAV's values, so an engine upgrade cannot change them unnoticed", () => {
    expect(optionValue(image, 'MaxIconsPE')).toBe('100');
    expect(optionValue(image, 'MaxRecHWP3')).toBe('16');
    expect(optionValue(image, 'PCREMatchLimit')).toBe('100000');
    expect(optionValue(image, 'PCRERecMatchLimit')).toBe('2000');
  });

  it('is what CLAMD_LIMITS says, the values timeouts and disk sizes are derived from', () => {
    expect({
      maxScanTimeMs: Number(optionValue(image, 'MaxScanTime')),
      maxScanBytes: clamdSizeBytes(optionValue(image, 'MaxScanSize') ?? ''),
      streamMaxLengthBytes: clamdSizeBytes(optionValue(image, 'StreamMaxLength') ?? ''),
      readTimeoutSeconds: Number(optionValue(image, 'ReadTimeout')),
    }).toEqual(CLAMD_LIMITS);
  });

  it("lets clamd answer before the worker's idle timeout, which fires before the ScanObject task's", () => {
    const maxScanTimeMs = Number(optionValue(image, 'MaxScanTime'));
    const readTimeoutMs = Number(optionValue(image, 'ReadTimeout')) * 1000;
    // A minute for clamd's MaxScanTime answer to arrive once its clock ran out.
    expect(DEFAULT_SCAN_IDLE_TIMEOUT_MS).toBeGreaterThanOrEqual(maxScanTimeMs + 60_000);
    // A stalled download: clamd drops the stream first, the worker sees that and retries.
    expect(DEFAULT_SCAN_IDLE_TIMEOUT_MS).toBeGreaterThan(readTimeoutMs);
    // A clamd that ignores its own limit is given up on inside even the smallest allowed task timeout.
    expect(DEFAULT_SCAN_IDLE_TIMEOUT_MS).toBeLessThan(MIN_BASE_TIMEOUT_SECONDS * 1000);
    expect(Number(optionValue(image, 'CommandReadTimeout'))).toBeLessThanOrEqual(readTimeoutMs / 1000);
  });

  it('has room for the default worker concurrency on a 4 vCPU task', () => {
    expect(Number(optionValue(image, 'MaxThreads'))).toBeGreaterThan(8);
  });
});

describe('localClamdConf', () => {
  const local = localClamdConf(image, placement, { MaxFileSize: '16M', MaxScanSize: '16M' });

  it("listens on a unix socket of its own with the image's socket mode, in the foreground, without TCP or a User switch", () => {
    expect(optionValue(local, 'LocalSocket')).toBe('/tmp/w/clamd.sock');
    expect(optionValue(local, 'LocalSocketMode')).toBe(optionValue(image, 'LocalSocketMode'));
    expect(optionValue(local, 'FixStaleSocket')).toBe('yes');
    expect(optionValue(local, 'TCPSocket')).toBeUndefined();
    expect(optionValue(local, 'TCPAddr')).toBeUndefined();
    expect(optionValue(local, 'Foreground')).toBe('yes');
    expect(optionValue(local, 'User')).toBeUndefined();
    expect(optionValue(local, 'DatabaseDirectory')).toBe('/tmp/db');
    expect(optionValue(local, 'TemporaryDirectory')).toBe('/tmp/t');
  });

  it('listens on 127.0.0.1 only when TCP is asked for', () => {
    const tcp = localClamdConf(image, tcpPlacement, { MaxFileSize: '16M', MaxScanSize: '16M' });
    expect(optionValue(tcp, 'TCPSocket')).toBe('40000');
    expect(optionValue(tcp, 'TCPAddr')).toBe('127.0.0.1');
    expect(optionValue(tcp, 'LocalSocket')).toBeUndefined();
  });

  it("keeps the image's Alert* and limit options, applying only the overrides", () => {
    for (const option of [
      'AlertExceedsMax',
      'AlertEncrypted',
      'MaxRecursion',
      'MaxFiles',
      'MaxScanTime',
      'StreamMaxLength',
    ]) {
      expect({ option, value: optionValue(local, option) }).toEqual({ option, value: optionValue(image, option) });
    }
    expect(optionValue(local, 'MaxFileSize')).toBe('16M');
    expect(local.match(/^MaxFileSize /gm)).toHaveLength(1);
  });

  it('refuses MaxFileSize different from MaxScanSize', () => {
    expect(() => localClamdConf(image, placement, { MaxFileSize: '8M' })).toThrow(/must equal MaxScanSize/);
  });

  it('compares sizes as clamd reads them: 1G = 1g = 1024M', () => {
    expect(() => localClamdConf(image, placement, { MaxFileSize: '1G', MaxScanSize: '1024m' })).not.toThrow();
    expect(clamdSizeBytes('16M')).toBe(16 * 1024 * 1024);
    expect(clamdSizeBytes('64k')).toBe(65536);
    expect(clamdSizeBytes('1g')).toBe(1024 ** 3);
    expect(clamdSizeBytes('2147483645')).toBe(CLAMAV_MAX_FILE_BYTES);
    expect(() => clamdSizeBytes('16 MB')).toThrow(/not a clamd size/);
  });

  it('lowers the secondary size limits with MaxFileSize, and MaxPartitions with MaxFiles', () => {
    for (const [option, leader] of Object.entries(FOLLOWING_LIMITS)) {
      const expected = leader === 'MaxFileSize' ? '16M' : optionValue(image, 'MaxFiles');
      expect({ option, value: optionValue(local, option) }).toEqual({ option, value: expected });
      expect(local.match(new RegExp(`^${option} `, 'gm'))).toHaveLength(1);
    }
    const fewFiles = localClamdConf(image, placement, { MaxFileSize: '16M', MaxScanSize: '16M', MaxFiles: '50' });
    expect(optionValue(fewFiles, 'MaxPartitions')).toBe('50');
    expect(clamdLimitProblems(local)).toEqual([]);
  });

  it('refuses a secondary limit below what it follows, and accepts one above', () => {
    const sizes = { MaxFileSize: '16M', MaxScanSize: '16M' } as const;
    expect(() => localClamdConf(image, placement, { ...sizes, MaxHTMLNormalize: '1M' })).toThrow(
      /MaxHTMLNormalize \(1M\) must not be below MaxFileSize \(16M\)/,
    );
    expect(() => localClamdConf(image, placement, { ...sizes, PCREMaxFileSize: '15M' })).toThrow(/PCREMaxFileSize/);
    expect(() => localClamdConf(image, placement, { MaxPartitions: '50' })).toThrow(
      /MaxPartitions \(50\) must not be below MaxFiles \(10000\)/,
    );
    expect(() => localClamdConf(image, placement, { ...sizes, MaxScriptNormalize: '32M' })).not.toThrow();
    expect(() => localClamdConf(image, placement, { ...sizes, PCREMaxFileSize: '0' })).not.toThrow();
  });

  it('refuses an image configuration that leaves a secondary limit at its lower clamd default', () => {
    const withoutNoTags = image.replace(/^MaxHTMLNoTags .*$/m, '');
    expect(clamdLimitProblems(withoutNoTags)).toEqual([expect.stringMatching(/MaxHTMLNoTags must be set/)]);
  });
});
