import { describe, expect, it } from '@jest/globals';
import {
  buildScanExecutionInput,
  copySourceFor,
  DEFAULT_SCAN_TIMING,
  executionNameFor,
  scanTimeoutSeconds,
} from '../../functions/commons/scan-execution.js';

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
  it('drops scan-* tags the uploader set and reports room for the verdict', () => {
    const input = buildScanExecutionInput(
      identity,
      [
        { Key: 'owner', Value: 'me' },
        { Key: 'scan-result', Value: 'Clean' },
      ],
      { timing: DEFAULT_SCAN_TIMING, copySourceEncoding: 'url' },
    );
    expect(input.object.tags).toEqual([{ Key: 'owner', Value: 'me' }]);
    expect(input.object.hasRoomForVerdictTags).toBe(true);
    expect(input.failure).toBeNull();
    expect(input.placement).toEqual({ area: 'staging' });
  });

  it('reports no room when the owner already uses seven or more tags', () => {
    const seven = Array.from({ length: 7 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const input = buildScanExecutionInput(identity, seven, {
      timing: DEFAULT_SCAN_TIMING,
      copySourceEncoding: 'url',
    });
    expect(input.object.hasRoomForVerdictTags).toBe(false);
  });

  it('addresses the null version of an unversioned bucket', () => {
    const { versionId: _ignored, ...unversioned } = identity;
    const input = buildScanExecutionInput(unversioned, [], {
      timing: DEFAULT_SCAN_TIMING,
      copySourceEncoding: 'raw',
    });
    expect(input.object.versionId).toBe('null');
    expect(input.object.copySource).toBe('staging/in/report 2024+final%.pdf?versionId=null');
    expect(input.object.currentCopySource).toBe('staging/in/report 2024+final%.pdf');
  });
});

describe('scanTimeoutSeconds', () => {
  it('grows with the object size and is capped', () => {
    const policy = { heartbeatSeconds: 60, baseTimeoutSeconds: 100, minBytesPerSecond: 1000, maxTimeoutSeconds: 500 };
    expect(scanTimeoutSeconds(0, policy)).toBe(100);
    expect(scanTimeoutSeconds(100_000, policy)).toBe(200);
    expect(scanTimeoutSeconds(10_000_000, policy)).toBe(500);
  });
});

describe('executionNameFor readability', () => {
  it('keeps accented letters readable in the slug', () => {
    expect(executionNameFor({ ...identity, key: 'docs/résumé naïve.pdf' })).toMatch(/^resume-naive-pdf-[0-9a-f]{32}$/);
  });
});
