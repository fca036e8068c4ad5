import { type CloudWatchClient, type MetricDatum, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import type { VerdictName } from '../../functions/commons/verdict.js';
import type { MetricDimension } from './config.js';
import type { Logger } from './log.js';

/** Metric names: the dashboard and alarms in infra/ refer to these. */
export const METRIC_NAMES = {
  objects: 'ObjectsScanned',
  bytes: 'BytesScanned',
  duration: 'ScanDuration',
} as const;

export interface ScanSample {
  readonly verdict: VerdictName;
  readonly bytes: number;
  readonly ms: number;
}

/** What happened since the last flush, kept as sums so memory does not grow with traffic. */
export interface MetricsWindow {
  readonly objectsByVerdict: Map<VerdictName, number>;
  bytes: number;
  durations: { count: number; sum: number; min: number; max: number };
}

export function emptyWindow(): MetricsWindow {
  return {
    objectsByVerdict: new Map(),
    bytes: 0,
    durations: { count: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: 0 },
  };
}

export function addSample(window: MetricsWindow, sample: ScanSample): void {
  window.objectsByVerdict.set(sample.verdict, (window.objectsByVerdict.get(sample.verdict) ?? 0) + 1);
  window.bytes += sample.bytes;
  const d = window.durations;
  d.count += 1;
  d.sum += sample.ms;
  d.min = Math.min(d.min, sample.ms);
  d.max = Math.max(d.max, sample.ms);
}

/**
 * One PutMetricData payload for a window: ObjectsScanned per verdict (extra dimension `Verdict`),
 * BytesScanned, and ScanDuration as a statistic set, all with the operator's dimensions. Empty window → [].
 */
export function metricData(
  window: MetricsWindow,
  dimensions: readonly MetricDimension[],
  timestamp: Date,
): MetricDatum[] {
  if (window.durations.count === 0) return [];
  const base = [...dimensions];
  const data: MetricDatum[] = [];
  for (const [verdict, count] of window.objectsByVerdict) {
    data.push({
      MetricName: METRIC_NAMES.objects,
      Dimensions: [...base, { Name: 'Verdict', Value: verdict }],
      Unit: 'Count',
      Value: count,
      Timestamp: timestamp,
    });
  }
  data.push({
    MetricName: METRIC_NAMES.bytes,
    Dimensions: base,
    Unit: 'Bytes',
    Value: window.bytes,
    Timestamp: timestamp,
  });
  const d = window.durations;
  data.push({
    MetricName: METRIC_NAMES.duration,
    Dimensions: base,
    Unit: 'Milliseconds',
    StatisticValues: { SampleCount: d.count, Sum: d.sum, Minimum: d.min, Maximum: d.max },
    Timestamp: timestamp,
  });
  return data;
}

export interface MetricsRecorder {
  record(sample: ScanSample): void;
  /** Sends what was recorded; never throws (metrics must not fail a scan). */
  flush(): Promise<void>;
  /** Stops the timer and sends the rest. */
  close(): Promise<void>;
}

export function createMetricsRecorder(options: {
  readonly client: CloudWatchClient | undefined;
  readonly namespace: string;
  readonly dimensions: readonly MetricDimension[];
  readonly flushIntervalMs: number;
  readonly log: Logger;
}): MetricsRecorder {
  let window = emptyWindow();
  let sending: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    const data = metricData(window, options.dimensions, new Date());
    window = emptyWindow();
    if (data.length === 0 || !options.client) return sending;
    const client = options.client;
    sending = sending.then(async () => {
      try {
        await client.send(new PutMetricDataCommand({ Namespace: options.namespace, MetricData: data }));
      } catch (error) {
        options.log.warn('metrics not sent', { error });
      }
    });
    return sending;
  };
  const timer = setInterval(() => void flush(), options.flushIntervalMs);
  timer.unref();
  return {
    record(sample) {
      if (options.client) addSample(window, sample);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
