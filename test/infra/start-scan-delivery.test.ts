import { Match, type Template } from 'aws-cdk-lib/assertions';
import {
  SCAN_REQUESTS_MAX_RECEIVE_COUNT,
  START_EXECUTION_RETRY,
  worstThrottlingBackoffSeconds,
} from '../../functions/start-scan/delivery.js';
import { START_SCAN_METRICS } from '../../functions/start-scan/metrics.js';
import { referencedId, synthScanflow } from './synth.js';

/** start-scan's side of "every object accounted for": the queue it reads, its retries, its alarm. */
let template: Template;
let startScan: { id: string; timeout: number; variables: Record<string, unknown> };

beforeAll(() => {
  ({ template } = synthScanflow({ pipelineName: 'uploads' }, { prebuiltImage: true }));
  const functions = Object.entries(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { STATE_MACHINE_ARN: Match.anyValue() } } },
    }),
  );
  expect(functions).toHaveLength(1);
  const [id, fn] = functions[0] as [
    string,
    { Properties: { Timeout: number; Environment: { Variables: Record<string, unknown> } } },
  ];
  startScan = { id, timeout: fn.Properties.Timeout, variables: fn.Properties.Environment.Variables };
});

describe('start-scan delivery', () => {
  test('scan-requests hands a record out SCAN_REQUESTS_MAX_RECEIVE_COUNT times before its DLQ, the number the local run uses too', () => {
    const [mapping] = Object.values(
      template.findResources('AWS::Lambda::EventSourceMapping', {
        Properties: { FunctionName: { Ref: startScan.id } },
      }),
    ) as { Properties: { EventSourceArn: unknown } }[];
    const queueId = referencedId(mapping?.Properties.EventSourceArn);
    const queue = template.findResources('AWS::SQS::Queue')[queueId ?? ''] as
      | { Properties: { RedrivePolicy?: { maxReceiveCount?: number } } }
      | undefined;
    expect(queue?.Properties.RedrivePolicy?.maxReceiveCount).toBe(SCAN_REQUESTS_MAX_RECEIVE_COUNT);
    expect(SCAN_REQUESTS_MAX_RECEIVE_COUNT).toBeGreaterThan(5);
  });

  test("the StartExecution retries' longest backoff fits in half of the function's timeout", () => {
    expect(START_EXECUTION_RETRY).toEqual({ mode: 'adaptive', maxAttempts: expect.any(Number) });
    expect(START_EXECUTION_RETRY.maxAttempts).toBeGreaterThan(3);
    expect(worstThrottlingBackoffSeconds(START_EXECUTION_RETRY.maxAttempts)).toBeLessThanOrEqual(startScan.timeout / 2);
  });

  test('start-scan publishes its metrics with the pipeline name', () => {
    expect(startScan.variables.PIPELINE_NAME).toBe('uploads');
  });

  test('alarms on objects start-scan found without a version id (the bucket needs versioning)', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'uploads-UnversionedObjects',
      Namespace: 'Scanflow',
      MetricName: START_SCAN_METRICS.unversioned,
      Dimensions: [{ Name: 'Pipeline', Value: 'uploads' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });
});
