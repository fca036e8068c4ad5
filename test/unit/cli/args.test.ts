import { describe, expect, it } from '@jest/globals';
import { InvalidArgumentError } from 'commander';
import { parsePositiveInt, parseS3Url, parseSince } from '../../../cli/args.js';
import { formatDuration, formatExecutionDuration, formatTime } from '../../../cli/format.js';

const NOW = new Date('2025-06-10T12:00:00.000Z');

describe('--since', () => {
  it.each([
    ['90s', '2025-06-10T11:58:30.000Z'],
    ['30m', '2025-06-10T11:30:00.000Z'],
    ['1h', '2025-06-10T11:00:00.000Z'],
    ['7d', '2025-06-03T12:00:00.000Z'],
    ['2w', '2025-05-27T12:00:00.000Z'],
    ['2025-06-01', '2025-06-01T00:00:00.000Z'],
    ['2025-06-01T10:00:00Z', '2025-06-01T10:00:00.000Z'],
    ['2025-06-01T10:00:00+02:00', '2025-06-01T08:00:00.000Z'],
  ])('%s → %s', (value, expected) => {
    expect(parseSince(value, NOW).toISOString()).toBe(expected);
  });

  it.each(['', '1', 'h', '1y', '-1h', 'yesterday', '2025-13-45', '1.5h'])('%j is refused', (value) => {
    expect(() => parseSince(value, NOW)).toThrow(InvalidArgumentError);
  });
});

describe('s3://bucket/key', () => {
  it('keeps the key exactly as written: slashes, spaces, percent signs, unicode', () => {
    expect(parseS3Url('s3://staging/a/b c/100%25 ü+.pdf')).toEqual({ bucket: 'staging', key: 'a/b c/100%25 ü+.pdf' });
  });

  it.each(['staging/key', 's3://staging', 's3://staging/', 's3:///key', 'https://staging/key'])(
    '%j is refused',
    (value) => {
      expect(() => parseS3Url(value)).toThrow(InvalidArgumentError);
    },
  );
});

describe('--limit', () => {
  it('takes whole numbers above zero only', () => {
    expect(parsePositiveInt('25')).toBe(25);
    for (const value of ['0', '-3', '2.5', 'ten', '', '1e3']) expect(() => parsePositiveInt(value)).toThrow();
  });
});

describe('human times and durations', () => {
  it('prints UTC to the second', () => {
    expect(formatTime(new Date('2025-06-10T12:00:00.123Z'))).toBe('2025-06-10T12:00:00Z');
    expect(formatTime('2025-06-10T12:00:00.000Z')).toBe('2025-06-10T12:00:00Z');
    expect(formatTime(undefined)).toBe('');
  });

  it.each([
    [0, '0 ms'],
    [338, '338 ms'],
    [1100, '1.1 s'],
    [59_949, '59.9 s'],
    [65_000, '1 m 05 s'],
    [3_600_000, '1 h 00 m'],
    [3 * 3_600_000 + 7 * 60_000, '3 h 07 m'],
    [26 * 3_600_000, '1 d 02 h'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('a running execution shows its age so far, a finished one its duration', () => {
    const startDate = new Date(NOW.getTime() - 12_000);
    expect(formatExecutionDuration({ startDate }, NOW)).toBe('12.0 s so far');
    expect(formatExecutionDuration({ startDate, stopDate: new Date(startDate.getTime() + 450) }, NOW)).toBe('450 ms');
  });
});
