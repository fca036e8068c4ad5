import { InvalidArgumentError } from 'commander';

/** Commander turns these into usage errors (exit 2) that name the option. */
export function parsePositiveInt(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new InvalidArgumentError('expected a whole number > 0');
  }
  return parsed;
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * `--since`: how far back, as an age (`90s`, `30m`, `1h`, `7d`, `2w`) counted from `now`, or an ISO 8601
 * time (`2025-06-01`, `2025-06-01T10:00:00Z`).
 */
export function parseSince(value: string, now: Date): Date {
  const age = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  if (age) {
    const amount = Number(age[1]);
    const unit = age[2] as keyof typeof UNIT_MS;
    return new Date(now.getTime() - amount * UNIT_MS[unit]);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const time = Date.parse(value.trim());
    if (!Number.isNaN(time)) return new Date(time);
  }
  throw new InvalidArgumentError('expected an age like 30m, 1h, 7d, 2w, or an ISO 8601 time like 2025-06-01T10:00:00Z');
}

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/** `s3://bucket/key`, the key exactly as written after the bucket's slash (no URL decoding: S3 keys are text). */
export function parseS3Url(value: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/s.exec(value);
  if (!match?.[1] || !match[2]) throw new InvalidArgumentError('expected s3://bucket/key');
  return { bucket: match[1], key: match[2] };
}
