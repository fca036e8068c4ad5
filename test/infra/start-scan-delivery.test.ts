import { Match, type Template } from 'aws-cdk-lib/assertions';
import { START_SCAN_METRICS } from '../../functions/start-scan/metrics.js';
import { synthScanflow } from './synth.js';

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
