import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { IMAGE_CLAMD_CONF, localClamdConf, optionValue } from '../../local/runtime/clamd.js';
import { CLAMAV_MAX_FILE_BYTES, DEFAULTS } from '../../scanner-image/src/config.js';

const image = readFileSync(IMAGE_CLAMD_CONF, 'utf8');
const placement = { port: 40000, databaseDir: '/tmp/db', tempDir: '/tmp/t' };

describe('scanner-image/clamd.conf', () => {
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

  it('has room for the default worker concurrency on a 4 vCPU task', () => {
    expect(Number(optionValue(image, 'MaxThreads'))).toBeGreaterThan(8);
  });
});

describe('localClamdConf', () => {
  const local = localClamdConf(image, placement, { MaxFileSize: '16M', MaxScanSize: '16M' });

  it('listens on 127.0.0.1 only, in the foreground, without a unix socket or a User switch', () => {
    expect(optionValue(local, 'TCPSocket')).toBe('40000');
    expect(optionValue(local, 'TCPAddr')).toBe('127.0.0.1');
    expect(optionValue(local, 'Foreground')).toBe('yes');
    expect(optionValue(local, 'LocalSocket')).toBeUndefined();
    expect(optionValue(local, 'User')).toBeUndefined();
    expect(optionValue(local, 'DatabaseDirectory')).toBe('/tmp/db');
    expect(optionValue(local, 'TemporaryDirectory')).toBe('/tmp/t');
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
});
