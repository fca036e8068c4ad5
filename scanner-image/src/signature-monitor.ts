import { type CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { parseClamdVersion } from './clamd-reply.js';
import type { MetricDimension } from './config.js';
import type { Logger } from './log.js';
import { type FreshnessReading, freshnessMetricData, freshnessReading, localTimeZone } from './signature-freshness.js';

export interface SignatureMonitor {
  /** Reads clamd's VERSION now and publishes; never throws. Resolves once that reading is sent (or skipped). */
  check(): Promise<void>;
  /**
   * Stops the timer and waits for a send in progress. A VERSION read in progress is not waited for (a hung
   * clamd must not hold up shutdown); what it reads is not sent.
   */
  close(): Promise<void>;
}

export interface SignatureMonitorOptions {
  /** clamd's raw VERSION reply. */
  readonly readVersion: () => Promise<string>;
  /** undefined: read and log, publish nothing (METRICS_ENABLED=false). */
  readonly client: CloudWatchClient | undefined;
  readonly namespace: string;
  readonly dimensions: readonly MetricDimension[];
  readonly intervalMs: number;
  /** The zone clamd formats its database date in (CLAMD_TIME_ZONE); default the worker's own. */
  readonly timeZone?: string;
  readonly log: Logger;
  readonly now?: () => Date;
}

/** clamd warns from an hour ahead on ("Virus database timestamp in the future"); so does the worker. */
const FUTURE_TOLERANCE_MS = 3_600_000;

/**
 * Publishes signature freshness at start and every `intervalMs`, whether or not anything is scanned: a
 * database nobody refreshes ages, and its age is what the stack alarms on. Each check reads clamd's
 * VERSION afresh (the worker's cached copy may be a minute old) and sends one PutMetricData.
 *
 * A change of version between checks is a signature update (freshclam downloaded one and clamd reloaded
 * it): counted in SignatureUpdates and logged. A database without a version or date (a custom DB without
 * a `daily.*` container) publishes nothing for what it lacks, logged once. A failed VERSION skips the check,
 * logged once per outage (clamd's health is the worker's gate's business).
 */
export function startSignatureMonitor(options: SignatureMonitorOptions): SignatureMonitor {
  const now = options.now ?? (() => new Date());
  let last: FreshnessReading | undefined;
  let updates = 0;
  let failing = false;
  let reportedMissing = false;
  let reportedFuture = false;
  let running: Promise<void> | undefined;
  let sending: Promise<unknown> | undefined;
  let closed = false;

  const once = async (): Promise<void> => {
    let reading: FreshnessReading;
    let raw: string;
    try {
      raw = await options.readVersion();
      reading = freshnessReading(parseClamdVersion(raw), options.timeZone);
    } catch (error) {
      if (!failing) options.log.warn('signature freshness not checked: clamd VERSION failed', { error });
      failing = true;
      return;
    }
    failing = false;
    if (closed) return;
    if (reading.version !== undefined && last?.version !== undefined && reading.version !== last.version) {
      updates += 1;
      options.log.info('signature database updated', {
        from: last.version,
        to: reading.version,
        publishedAt: reading.publishedAt?.toISOString(),
      });
    }
    if (reading.version !== undefined) last = reading;
    if ((reading.version === undefined || !reading.publishedAt) && !reportedMissing) {
      reportedMissing = true;
      options.log.warn('clamd reports no signature database version or date; its freshness is not published', {
        version: raw.replace(/\0/g, '').trim(),
      });
    }
    const at = now();
    if (reading.publishedAt && reading.publishedAt.getTime() - at.getTime() > FUTURE_TOLERANCE_MS && !reportedFuture) {
      reportedFuture = true;
      options.log.warn('signature database date is in the future: check CLAMD_TIME_ZONE and the clocks', {
        publishedAt: reading.publishedAt.toISOString(),
        timeZone: options.timeZone ?? localTimeZone(),
      });
    }
    const data = freshnessMetricData(reading, updates, options.dimensions, at);
    if (data.length === 0 || !options.client) return;
    try {
      sending = options.client.send(new PutMetricDataCommand({ Namespace: options.namespace, MetricData: data }));
      await sending;
      updates = 0;
    } catch (error) {
      // The count is kept for the next check: an update is not lost with one failed send.
      options.log.warn('signature metrics not sent', { error });
    } finally {
      sending = undefined;
    }
  };

  const check = (): Promise<void> => {
    // One check at a time: a slow VERSION (clamd loading) must not pile up readings.
    running ??= once().finally(() => {
      running = undefined;
    });
    return running;
  };

  void check();
  const timer = setInterval(() => {
    if (!closed) void check();
  }, options.intervalMs);
  timer.unref();

  return {
    check,
    async close() {
      closed = true;
      clearInterval(timer);
      await sending?.catch(() => undefined);
    },
  };
}
