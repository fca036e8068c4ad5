import { moveFailed, type ScanNotification } from '../commons/scan-notification.js';

/** Metric names the result recorder publishes; the dashboard and alarms (infra/lib/monitoring.ts) use them. */
export const RESULT_METRICS = {
  /** One per object and final verdict — what the pipeline decided, after every retry. */
  results: 'ScanResults',
  /** Unscannable and Error results again, by reason, to tell `too-large` from `encrypted` from timeouts. */
  resultsByReason: 'ScanResultsByReason',
  /** Objects whose verdict was recorded but which could not be moved (promote/quarantine/remove failed). */
  moveFailures: 'MoveFailures',
} as const;

export interface ResultMetric {
  readonly name: string;
  readonly dimensions: Readonly<Record<string, string>>;
}

/**
 * The metrics one result notification counts for. Pure, so the mapping is tested without Lambda or EMF.
 * A timed-out task is one reason whatever the engine calls it: ScanObject has no heartbeat timeout any more, but
 * a notification from an execution started before that change may still say States.HeartbeatTimeout.
 */
export function resultMetrics(notification: ScanNotification): ResultMetric[] {
  const verdict = notification.verdict;
  const metrics: ResultMetric[] = [{ name: RESULT_METRICS.results, dimensions: { Verdict: verdict } }];
  if (verdict === 'Unscannable' || verdict === 'Error') {
    const reason = notification.scan.reason === 'States.HeartbeatTimeout' ? 'States.Timeout' : notification.scan.reason;
    metrics.push({
      name: RESULT_METRICS.resultsByReason,
      dimensions: { Verdict: verdict, Reason: reason || 'unknown' },
    });
  }
  if (moveFailed(notification)) {
    // Pipeline only, so one alarm covers both directions.
    metrics.push({ name: RESULT_METRICS.moveFailures, dimensions: {} });
  }
  return metrics;
}
