import { describe, expect, it } from '@jest/globals';
import { addSample, emptyWindow, metricData } from '../../scanner-image/src/metrics.js';

describe('metricData', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const dims = [{ Name: 'Environment', Value: 'prod' }];

  it('sends nothing for an empty window', () => {
    expect(metricData(emptyWindow(), dims, at)).toEqual([]);
  });

  it('aggregates a window into objects per verdict, bytes and a duration statistic set', () => {
    const window = emptyWindow();
    addSample(window, { verdict: 'Clean', bytes: 100, ms: 10 });
    addSample(window, { verdict: 'Clean', bytes: 50, ms: 30 });
    addSample(window, { verdict: 'Infected', bytes: 68, ms: 5 });
    expect(metricData(window, dims, at)).toEqual([
      {
        MetricName: 'ObjectsScanned',
        Dimensions: [...dims, { Name: 'Verdict', Value: 'Clean' }],
        Unit: 'Count',
        Value: 2,
        Timestamp: at,
      },
      {
        MetricName: 'ObjectsScanned',
        Dimensions: [...dims, { Name: 'Verdict', Value: 'Infected' }],
        Unit: 'Count',
        Value: 1,
        Timestamp: at,
      },
      { MetricName: 'BytesScanned', Dimensions: dims, Unit: 'Bytes', Value: 218, Timestamp: at },
      {
        MetricName: 'ScanDuration',
        Dimensions: dims,
        Unit: 'Milliseconds',
        StatisticValues: { SampleCount: 3, Sum: 45, Minimum: 5, Maximum: 30 },
        Timestamp: at,
      },
    ]);
  });
});
