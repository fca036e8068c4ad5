import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { SIGNATURE_METRICS } from '../../scanner-image/src/signature-freshness.js';

export interface SignatureFreshnessMonitoringProps {
  readonly pipelineName: string;
  readonly metricsNamespace: string;
  /** SignatureAge fires when a worker's loaded signatures are older than this. */
  readonly signatureAgeAlarmThreshold: Duration;
  /**
   * The pool's minimum. Above 0 some worker always runs and reports freshness every minute, so no report at
   * all is an alarm (SignatureFreshnessMissing). At 0 an idle pool has no worker and nothing to report:
   * silence is normal, and there is no such alarm.
   */
  readonly minWorkers: number;
  /** @default - alarms have no actions */
  readonly alarmTopic?: sns.ITopic;
}

/** Freshness is judged over this many 5-minute periods in a row: a new task from an older image loads
 * the image's signatures, and freshclam's first update plus clamd's reload take a minute or two. */
const PERIOD = Duration.minutes(5);
const EVALUATION_PERIODS = 3;

/** One of the worker's signature metrics, with the dimensions the task definition gives it (METRICS_DIMENSIONS). */
export function signatureMetric(
  props: Pick<SignatureFreshnessMonitoringProps, 'pipelineName' | 'metricsNamespace'>,
  metricName: (typeof SIGNATURE_METRICS)[keyof typeof SIGNATURE_METRICS],
  statistic: string,
  label?: string,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: props.metricsNamespace,
    metricName,
    dimensionsMap: { Pipeline: props.pipelineName },
    statistic,
    period: PERIOD,
    ...(label ? { label } : {}),
  });
}

/**
 * - SignatureAge: the oldest signatures any worker scans with (Maximum over workers) are older than the
 *   threshold for 15 minutes. A worker whose freshclam stopped, or a mirror that stopped updating, ages.
 * - SignatureFreshnessMissing (minWorkers > 0 only): no worker reported SignatureAgeHours for 15 minutes,
 *   so freshness is unknown (missing data is breaching).
 */
export function signatureFreshnessAlarms(
  scope: Construct,
  props: SignatureFreshnessMonitoringProps,
): cloudwatch.Alarm[] {
  const alarms: cloudwatch.Alarm[] = [];
  const add = (id: string, alarmProps: Omit<cloudwatch.AlarmProps, 'alarmName'>): void => {
    const alarm = new cloudwatch.Alarm(scope, id, { alarmName: `${props.pipelineName}-${id}`, ...alarmProps });
    if (props.alarmTopic) alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    alarms.push(alarm);
  };
  const thresholdHours = props.signatureAgeAlarmThreshold.toHours({ integral: false });
  add('SignatureAge', {
    metric: signatureMetric(props, SIGNATURE_METRICS.ageHours, 'Maximum'),
    alarmDescription: `A worker scans with signatures older than ${thresholdHours} h: freshclam on it is not updating (dead, blocked, rate-limited) or its mirror serves an old database. New malware is missed. See README "Operations".`,
    threshold: thresholdHours,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: EVALUATION_PERIODS,
    datapointsToAlarm: EVALUATION_PERIODS,
    // No worker, no signatures in use: nothing is scanned stale. Silence is SignatureFreshnessMissing's matter.
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  if (props.minWorkers > 0) {
    add('SignatureFreshnessMissing', {
      metric: signatureMetric(props, SIGNATURE_METRICS.ageHours, 'SampleCount'),
      alarmDescription: `No worker reported ${SIGNATURE_METRICS.ageHours} although at least ${props.minWorkers} should run: workers are not running, cannot publish metrics, or clamd reports no dated signature database. See README "Operations".`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: EVALUATION_PERIODS,
      datapointsToAlarm: EVALUATION_PERIODS,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
  }
  return alarms;
}

/** One dashboard row: signature age against the alarm threshold, and the database version with its updates. */
export function signatureFreshnessWidgets(props: SignatureFreshnessMonitoringProps): cloudwatch.IWidget[] {
  return [
    new cloudwatch.GraphWidget({
      title: 'Signature age (h)',
      left: [
        signatureMetric(props, SIGNATURE_METRICS.ageHours, 'Maximum', 'Oldest (any worker)'),
        signatureMetric(props, SIGNATURE_METRICS.ageHours, 'Minimum', 'Freshest'),
      ],
      leftAnnotations: [{ value: props.signatureAgeAlarmThreshold.toHours({ integral: false }), label: 'alarm' }],
      leftYAxis: { min: 0 },
      width: 12,
    }),
    new cloudwatch.GraphWidget({
      title: 'Signature database version',
      // Minimum below Maximum: some workers still scan with an older database than others.
      left: [
        signatureMetric(props, SIGNATURE_METRICS.databaseVersion, 'Minimum', 'Oldest version'),
        signatureMetric(props, SIGNATURE_METRICS.databaseVersion, 'Maximum', 'Newest version'),
      ],
      leftYAxis: { showUnits: false },
      right: [signatureMetric(props, SIGNATURE_METRICS.updates, 'Sum', 'Updates loaded')],
      width: 12,
    }),
  ];
}
