import type { StartOutcome } from './start-scan.js';

/**
 * Metric names start-scan publishes (Powertools EMF, dimension `Pipeline`); the alarms
 * (infra/lib/monitoring.ts) use them.
 */
export const START_SCAN_METRICS = {
  started: 'ScansStarted',
  duplicate: 'DuplicateEvents',
  skipped: 'ObjectsSkipped',
  /** Started from the event because no key reading existed any more: the result is Unscannable `deleted`. */
  goneBeforeScan: 'ObjectsGoneBeforeScan',
  /** Started from the event because HeadObject needs a customer key (SSE-C): Unscannable `unsupported-encryption`. */
  customerKeyEncrypted: 'CustomerKeyEncryptedObjects',
  /** An object without a version id: its result is Error `unversioned-bucket`, and the bucket needs versioning. */
  unversioned: 'UnversionedObjects',
} as const;

/** The metrics one outcome counts, each once. Counted for new executions only, so a duplicate event adds nothing. */
export function outcomeMetrics(result: StartOutcome): string[] {
  if (result.outcome !== 'started') return [START_SCAN_METRICS[result.outcome]];
  const names: string[] = [START_SCAN_METRICS.started];
  if (result.pinnedBy === 'event-gone') names.push(START_SCAN_METRICS.goneBeforeScan);
  if (result.pinnedBy === 'event-sse-c') names.push(START_SCAN_METRICS.customerKeyEncrypted);
  if (result.unversioned) names.push(START_SCAN_METRICS.unversioned);
  return names;
}
