import { Duration } from 'aws-cdk-lib';
import { Capture, type Template } from 'aws-cdk-lib/assertions';
import { SIGNATURE_METRICS } from '../../scanner-image/src/signature-freshness.js';
import { synthScanflow } from './synth.js';

/** Signature freshness in the stack: the alarms and the dashboard row read what the worker publishes. */

type Alarm = Record<string, unknown>;

function alarmsOf(template: Template): Alarm[] {
  return Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
    (a) => (a as { Properties: Alarm }).Properties,
  );
}

function alarmNamed(template: Template, name: string): Alarm | undefined {
  return alarmsOf(template).find((a) => a.AlarmName === name);
}

interface Widget {
  readonly properties: { readonly title?: string; readonly metrics?: unknown[][]; readonly annotations?: unknown };
}

/** The dashboard's widgets: the body is an Fn::Join whose tokens (ARNs, region) all sit inside JSON strings. */
function dashboardWidgets(template: Template): Widget[] {
  const body = new Capture();
  template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
  const joined = body.asObject() as { 'Fn::Join': [string, unknown[]] };
  const text = joined['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'TOKEN')).join('');
  return (JSON.parse(text) as { widgets: Widget[] }).widgets;
}

describe('signature freshness, default deployment (minWorkers 0)', () => {
  let template: Template;
  beforeAll(() => {
    ({ template } = synthScanflow({}, { prebuiltImage: true }));
  });

  test('SignatureAge alarms when the oldest signatures any worker uses pass 48 h for 15 minutes', () => {
    expect(alarmNamed(template, 'scanflow-SignatureAge')).toMatchObject({
      Namespace: 'Scanflow',
      MetricName: SIGNATURE_METRICS.ageHours,
      Dimensions: [{ Name: 'Pipeline', Value: 'scanflow' }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 48,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
  });

  test('no missing-data alarm: a pool scaled to zero has no worker to report, and that is normal', () => {
    expect(alarmNamed(template, 'scanflow-SignatureFreshnessMissing')).toBeUndefined();
    const onSignatures = alarmsOf(template).filter((a) =>
      (Object.values(SIGNATURE_METRICS) as unknown[]).includes(a.MetricName),
    );
    expect(onSignatures.map((a) => a.AlarmName)).toEqual(['scanflow-SignatureAge']);
  });

  test("the dashboard graphs age (with the alarm threshold) and version, by the worker's metric names", () => {
    const widgets = dashboardWidgets(template);
    const titled = (title: string) => widgets.find((w) => w.properties.title === title)?.properties;
    const metric = (name: string, stat: string, label: string, extra: Record<string, unknown> = {}) => [
      'Scanflow',
      name,
      'Pipeline',
      'scanflow',
      { label, stat, ...extra },
    ];
    expect(titled('Signature age (h)')).toMatchObject({
      metrics: [
        metric(SIGNATURE_METRICS.ageHours, 'Maximum', 'Oldest (any worker)'),
        metric(SIGNATURE_METRICS.ageHours, 'Minimum', 'Freshest'),
      ],
      annotations: { horizontal: [{ value: 48, label: 'alarm', yAxis: 'left' }] },
    });
    expect(titled('Signature database version')).toMatchObject({
      metrics: [
        metric(SIGNATURE_METRICS.databaseVersion, 'Minimum', 'Oldest version'),
        metric(SIGNATURE_METRICS.databaseVersion, 'Maximum', 'Newest version'),
        metric(SIGNATURE_METRICS.updates, 'Sum', 'Updates loaded', { yAxis: 'right' }),
      ],
    });
  });

  test('the dimensions the alarms and widgets use are the ones the task definition gives the worker', () => {
    const [definition] = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Array<{
      Properties: { ContainerDefinitions: Array<{ Environment: Array<{ Name: string; Value: unknown }> }> };
    }>;
    const environment = definition?.Properties.ContainerDefinitions[0]?.Environment ?? [];
    expect(environment).toEqual(
      expect.arrayContaining([
        { Name: 'METRICS_NAMESPACE', Value: 'Scanflow' },
        { Name: 'METRICS_DIMENSIONS', Value: 'Pipeline=scanflow' },
      ]),
    );
  });
});

describe('signature freshness with a warm pool (minWorkers 2) and a 24 h threshold', () => {
  let template: Template;
  beforeAll(() => {
    ({ template } = synthScanflow(
      { pipelineName: 'acme', minWorkers: 2, signatureAgeAlarmThreshold: Duration.hours(24) },
      { prebuiltImage: true },
    ));
  });

  test('SignatureAge uses the threshold, in hours', () => {
    expect(alarmNamed(template, 'acme-SignatureAge')).toMatchObject({
      MetricName: SIGNATURE_METRICS.ageHours,
      Dimensions: [{ Name: 'Pipeline', Value: 'acme' }],
      Threshold: 24,
    });
  });

  test('no report of SignatureAgeHours for 15 minutes alarms: missing data is breaching', () => {
    expect(alarmNamed(template, 'acme-SignatureFreshnessMissing')).toMatchObject({
      Namespace: 'Scanflow',
      MetricName: SIGNATURE_METRICS.ageHours,
      Dimensions: [{ Name: 'Pipeline', Value: 'acme' }],
      Statistic: 'SampleCount',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'breaching',
    });
  });
});
