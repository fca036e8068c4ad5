/**
 * How old the signatures clamd scans with are, read from its VERSION reply. Pure: no clock, no clients.
 * The worker publishes the result (signature-monitor.ts); the stack's dashboard and alarms
 * (infra/lib/signature-monitoring.ts) read the same metric names from {@link SIGNATURE_METRICS}.
 */
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { ClamdVersion } from './clamd-reply.js';
import type { MetricDimension } from './config.js';

/** Metric names of signature freshness: the worker publishes them, infra/ graphs and alarms on them. */
export const SIGNATURE_METRICS = {
  /** Hours since the publication date of the database clamd has loaded (its VERSION reply). */
  ageHours: 'SignatureAgeHours',
  /** The loaded database's version (the daily database's number for the official one). */
  databaseVersion: 'SignatureDatabaseVersion',
  /** Times the worker saw clamd's database version change (freshclam updated it and clamd reloaded). */
  updates: 'SignatureUpdates',
} as const;

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
/** C's ctime() format, which clamd uses: `Tue Nov 25 08:26:02 2025`, the day space-padded (`Nov  4`). */
const CTIME = /^([A-Z][a-z]{2}) ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/** The time zone the worker process runs in: the one clamd formats in when they share a host or task. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Whether `name` is a time zone this runtime knows (an IANA name such as `UTC` or `Europe/Berlin`). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * The instant clamd's database date names. clamd prints it with ctime(): the wall-clock time in clamd's own
 * time zone, without saying which (measured with clamd 1.4.6: the same database reads `17:08:00` with TZ
 * unset and `22:38:00` with TZ=Asia/Kolkata). `timeZone` is that zone: the worker's own by default, since
 * it runs in the same task (neither sets TZ in the image, so both are UTC). Returns undefined for text that
 * is not a ctime() date, including a weekday that does not match the date.
 */
export function parseClamdDate(text: string, timeZone: string = localTimeZone()): Date | undefined {
  const match = CTIME.exec(text.trim());
  if (!match) return undefined;
  const [, weekday, monthName, day, hour, minute, second, year] = match;
  const month = MONTHS.indexOf(monthName as (typeof MONTHS)[number]);
  if (month < 0) return undefined;
  const wall = Date.UTC(Number(year), month, Number(day), Number(hour), Number(minute), Number(second));
  const asWritten = new Date(wall);
  // Date.UTC rolls over out-of-range fields (Feb 30 → Mar 2, 25:00 → next day): refuse instead.
  if (
    asWritten.getUTCDate() !== Number(day) ||
    asWritten.getUTCHours() !== Number(hour) ||
    asWritten.getUTCMinutes() !== Number(minute) ||
    asWritten.getUTCSeconds() !== Number(second) ||
    WEEKDAYS[asWritten.getUTCDay()] !== weekday
  ) {
    return undefined;
  }
  return new Date(wallTimeToInstant(wall, timeZone));
}

/**
 * The instant at which clocks in `timeZone` read the wall time `wall` (given as if it were UTC). Two passes
 * settle the offset across a DST change; a wall time that occurs twice (clocks going back) resolves to one of
 * the two, an hour apart: negligible against a threshold of hours.
 */
function wallTimeToInstant(wall: number, timeZone: string): number {
  const first = wall - zoneOffsetMs(wall, timeZone);
  return wall - zoneOffsetMs(first, timeZone);
}

/** How far `timeZone`'s clocks are ahead of UTC at `instant`. */
function zoneOffsetMs(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(instant));
  const field = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(
    field('year'),
    field('month') - 1,
    field('day'),
    field('hour'),
    field('minute'),
    field('second'),
  );
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** Hours from `publishedAt` to `now`. Negative when the date is ahead of this clock (skew or wrong time zone). */
export function signatureAgeHours(publishedAt: Date, now: Date): number {
  return (now.getTime() - publishedAt.getTime()) / 3_600_000;
}

/** The database version as a number, or undefined when clamd reported none (`unknown`) or not a number. */
export function databaseVersionNumber(version: ClamdVersion): number | undefined {
  return /^\d+$/.test(version.databaseVersion) ? Number(version.databaseVersion) : undefined;
}

/** What one reading of clamd's VERSION says about freshness. */
export interface FreshnessReading {
  readonly version?: number;
  readonly publishedAt?: Date;
}

export function freshnessReading(version: ClamdVersion, timeZone?: string): FreshnessReading {
  const number = databaseVersionNumber(version);
  const publishedAt = version.databaseDate === undefined ? undefined : parseClamdDate(version.databaseDate, timeZone);
  return { ...(number !== undefined ? { version: number } : {}), ...(publishedAt ? { publishedAt } : {}) };
}

/**
 * One PutMetricData payload: SignatureAgeHours and SignatureDatabaseVersion when clamd reports them, and
 * SignatureUpdates (version changes seen since the last payload) whenever it reports a version, so a
 * quiet period reads as 0 rather than missing. Nothing for an unversioned database: its freshness is unknown.
 */
export function freshnessMetricData(
  reading: FreshnessReading,
  updates: number,
  dimensions: readonly MetricDimension[],
  now: Date,
): MetricDatum[] {
  const base = { Dimensions: [...dimensions], Timestamp: now };
  const data: MetricDatum[] = [];
  if (reading.publishedAt) {
    data.push({
      ...base,
      MetricName: SIGNATURE_METRICS.ageHours,
      Unit: 'None',
      Value: signatureAgeHours(reading.publishedAt, now),
    });
  }
  if (reading.version !== undefined) {
    data.push({ ...base, MetricName: SIGNATURE_METRICS.databaseVersion, Unit: 'None', Value: reading.version });
    data.push({ ...base, MetricName: SIGNATURE_METRICS.updates, Unit: 'Count', Value: updates });
  }
  return data;
}
