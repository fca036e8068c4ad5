import { describe, expect, it } from '@jest/globals';
import { ConfigurationError } from '../../functions/commons/errors.js';
import { exclusionReason, loadStartScanConfig } from '../../functions/start-scan/config.js';

const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:scan-object';

describe('loadStartScanConfig', () => {
  it('applies defaults and parses lists', () => {
    const config = loadStartScanConfig({
      STATE_MACHINE_ARN: arn,
      PIPELINE_BUCKETS: 'clean, quarantine',
      EXCLUDED_KEY_PREFIXES: 'tmp/,',
    });
    expect(config.pipelineBuckets).toEqual(new Set(['clean', 'quarantine']));
    expect(config.excludedKeyPrefixes).toEqual(['tmp/']);
    expect(config.excludedKeySuffixes).toEqual([]);
    expect(config.timing.queueWaitSeconds).toBe(1800);
    expect(config.copySourceEncoding).toBe('url');
  });

  it('names every bad variable and what it accepts, in one error', () => {
    let caught: unknown;
    try {
      loadStartScanConfig({ SCAN_QUEUE_WAIT_SECONDS: 'soon', COPY_SOURCE_ENCODING: 'base64' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    const message = (caught as Error).message;
    expect(message).toMatch(/STATE_MACHINE_ARN/);
    expect(message).toMatch(/SCAN_QUEUE_WAIT_SECONDS: expected a whole number > 0, got "soon"/);
    expect(message).toMatch(/COPY_SOURCE_ENCODING: expected one of: url, raw/);
  });

  it("refuses a base timeout that clamd's MaxScanTime would outlast, and keeps the default above it", () => {
    expect(() => loadStartScanConfig({ STATE_MACHINE_ARN: arn, SCAN_BASE_TIMEOUT_SECONDS: '300' })).toThrow(
      /SCAN_BASE_TIMEOUT_SECONDS \(300\) must be at least 1200: clamd's MaxScanTime/,
    );
    expect(loadStartScanConfig({ STATE_MACHINE_ARN: arn }).timing.baseTimeoutSeconds).toBe(1200);
  });

  it('refuses a cap that would cut the queue wait or the scan', () => {
    expect(() =>
      loadStartScanConfig({
        STATE_MACHINE_ARN: arn,
        SCAN_QUEUE_WAIT_SECONDS: '3600',
        SCAN_MAX_TIMEOUT_SECONDS: '4000',
      }),
    ).toThrow(
      /SCAN_MAX_TIMEOUT_SECONDS \(4000\) must be at least SCAN_QUEUE_WAIT_SECONDS \+ SCAN_BASE_TIMEOUT_SECONDS \(4800\)/,
    );
  });

  it('refuses the retired heartbeat setting rather than ignore it', () => {
    expect(() => loadStartScanConfig({ STATE_MACHINE_ARN: arn, SCAN_HEARTBEAT_SECONDS: '60' })).toThrow(
      /SCAN_HEARTBEAT_SECONDS: no longer used: ScanObject has no heartbeat timeout/,
    );
  });
});

describe('exclusionReason', () => {
  const config = {
    pipelineBuckets: new Set(['clean']),
    excludedKeyPrefixes: ['tmp/'],
    excludedKeySuffixes: ['.part'],
  };

  it.each([
    [{ bucket: 'clean', key: 'a' }, /written by the pipeline/],
    [{ bucket: 'staging', key: 'tmp/a' }, /prefix tmp\//],
    [{ bucket: 'staging', key: 'upload.part' }, /suffix \.part/],
  ])('skips %j', (object, reason) => {
    expect(exclusionReason(object, config)).toMatch(reason);
  });

  it('scans everything else', () => {
    expect(exclusionReason({ bucket: 'staging', key: 'docs/tmp/a.part.pdf' }, config)).toBeUndefined();
  });
});
