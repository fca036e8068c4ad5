import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { VERDICT_NAMES, type VerdictName } from '../../functions/commons/verdict.js';
import { RESULT_METRICS } from '../../functions/record-result/result-metrics.js';
import { START_SCAN_METRICS } from '../../functions/start-scan/metrics.js';
// The worker's own names: the dashboard reads exactly what scanner-image/src/metrics.ts publishes.
import { METRIC_NAMES } from '../../scanner-image/src/metrics.js';
import { signatureFreshnessAlarms, signatureFreshnessWidgets } from './signature-monitoring.js';

export interface ScanMonitoringProps {
  readonly pipelineName: string;
  readonly metricsNamespace: string;
  readonly scanRequests: sqs.IQueue;
  readonly scanRequestsDlq: sqs.IQueue;
  readonly scanJobs: sqs.IQueue;
  readonly scanJobsDlq: sqs.IQueue;
  readonly stateMachine: sfn.IStateMachine;
  readonly startScan: lambda.IFunction;
  /** Publishes ScanResults, the final verdict of every object (functions/record-result). */
  readonly recordResult: lambda.IFunction;
  readonly resultsMetricsDlq: sqs.IQueue;
  readonly workerService: ecs.FargateService;
  readonly oldestScanJobAgeAlarmThreshold: Duration;
  /** SignatureAge fires when a worker scans with signatures older than this. */
  readonly signatureAgeAlarmThreshold: Duration;
  /** The pool's minimum: above 0, no worker reporting signature freshness is an alarm too. */
  readonly minWorkers: number;
  /** @default - alarms have no actions */
  readonly alarmTopic?: sns.ITopic;
}

/** Dashboard and alarms an operator needs to see whether files are flowing and whether verdicts are honest. */
export class ScanMonitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ScanMonitoringProps) {
    super(scope, id);
    const { pipelineName, metricsNamespace } = props;
    const period = Duration.minutes(5);

    const workerMetric = (metricName: string, statistic: string, verdict?: VerdictName, labelled = true) =>
      new cloudwatch.Metric({
        namespace: metricsNamespace,
        metricName,
        dimensionsMap: verdict ? { Pipeline: pipelineName, Verdict: verdict } : { Pipeline: pipelineName },
        statistic,
        period,
        ...(labelled ? { label: verdict ?? `${metricName} (${statistic})` } : {}),
      });
    // The worker counts scan attempts (a retried attempt counts again); record-result counts final verdicts.
    const attemptMetrics = VERDICT_NAMES.map((verdict) => workerMetric(METRIC_NAMES.objects, 'Sum', verdict));
    const resultMetrics = VERDICT_NAMES.map((verdict) => workerMetric(RESULT_METRICS.results, 'Sum', verdict));

    const runningWorkers = new cloudwatch.Metric({
      namespace: 'ECS/ContainerInsights',
      metricName: 'RunningTaskCount',
      dimensionsMap: {
        ClusterName: props.workerService.cluster.clusterName,
        ServiceName: props.workerService.serviceName,
      },
      statistic: 'Maximum',
      period: Duration.minutes(1),
      label: 'Running workers',
    });

    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string) => {
      const created = new cloudwatch.Alarm(this, id, {
        metric,
        alarmName: `${pipelineName}-${id}`,
        alarmDescription: description,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      if (props.alarmTopic) created.addAlarmAction(new actions.SnsAction(props.alarmTopic));
      this.alarms.push(created);
      return created;
    };

    alarm(
      'ErrorVerdicts',
      workerMetric(RESULT_METRICS.results, 'Sum', 'Error', false),
      1,
      'Objects ended with verdict Error after retries (scanner unavailable, access denied, no worker within the scan timeout, WorkerLostError, unversioned-bucket): they stay blocked in staging.',
    );
    alarm(
      'MoveFailures',
      workerMetric(RESULT_METRICS.moveFailures, 'Sum', undefined, false),
      1,
      'Objects got their verdict but could not be promoted or quarantined: they stay in staging, tagged.',
    );
    alarm(
      'ResultsMetricsDlqDepth',
      props.resultsMetricsDlq.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      1,
      'Result notifications record-result could not count: the ScanResults metrics undercount.',
    );
    alarm(
      'UnversionedObjects',
      workerMetric(START_SCAN_METRICS.unversioned, 'Sum', undefined, false),
      1,
      'start-scan found objects without a version id: a protected bucket is not versioned (or versioning is suspended). Their verdict is Error unversioned-bucket and they stay in staging; enable versioning on the bucket.',
    );
    alarm(
      'ScanRequestsDlqDepth',
      props.scanRequestsDlq.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      1,
      'Scan requests (S3 events) that start-scan could not turn into executions: these objects were never scanned. Redrive the DLQ once the cause is fixed (README, Operations).',
    );
    alarm(
      'ScanJobsDlqDepth',
      props.scanJobsDlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      1,
      'Scan jobs whose task token could not be completed; their executions end as Error at the scan timeout.',
    );
    alarm(
      'ScanJobsOldestAge',
      props.scanJobs.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      props.oldestScanJobAgeAlarmThreshold.toSeconds(),
      'A scan job has waited too long for a worker: the pool is at its maximum or workers fail to start.',
    );
    alarm(
      'FailedExecutions',
      props.stateMachine.metricFailed({ period, statistic: 'Sum' }),
      1,
      'scan-object executions failed (e.g. NotifyResult could not publish): the verdict may not have been announced.',
    );
    alarm(
      'StartScanErrors',
      props.startScan.metricErrors({ period, statistic: 'Sum' }),
      1,
      'start-scan invocations failed; their messages are retried and end in the scan-requests DLQ.',
    );

    // Signature freshness (infra/lib/signature-monitoring.ts): too old, or (minWorkers > 0) not reported.
    const freshness = {
      pipelineName,
      metricsNamespace,
      signatureAgeAlarmThreshold: props.signatureAgeAlarmThreshold,
      minWorkers: props.minWorkers,
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
    };
    this.alarms.push(...signatureFreshnessAlarms(this, freshness));

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${pipelineName}-scanning`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Objects by final verdict',
        left: resultMetrics,
        stacked: true,
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Scan attempts by outcome (worker)',
        left: attemptMetrics,
        stacked: true,
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Bytes scanned',
        left: [workerMetric(METRIC_NAMES.bytes, 'Sum')],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Scan duration (ms)',
        // The worker publishes statistic sets, for which CloudWatch has no percentiles.
        left: [workerMetric(METRIC_NAMES.duration, 'Average'), workerMetric(METRIC_NAMES.duration, 'Maximum')],
        width: 6,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'scan-jobs queue depth',
        left: [
          props.scanJobs.metricApproximateNumberOfMessagesVisible({ label: 'Waiting', statistic: 'Maximum' }),
          props.scanJobs.metricApproximateNumberOfMessagesNotVisible({ label: 'Being scanned', statistic: 'Maximum' }),
        ],
        right: [runningWorkers],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Oldest waiting scan job (s)',
        left: [props.scanJobs.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum' })],
        leftAnnotations: [{ value: props.oldestScanJobAgeAlarmThreshold.toSeconds(), label: 'alarm' }],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Executions',
        left: [
          props.stateMachine.metricStarted({ statistic: 'Sum', label: 'Started' }),
          props.stateMachine.metricSucceeded({ statistic: 'Sum', label: 'Succeeded' }),
          props.stateMachine.metricFailed({ statistic: 'Sum', label: 'Failed' }),
          props.stateMachine.metricTimedOut({ statistic: 'Sum', label: 'Timed out' }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues',
        left: [
          props.scanRequestsDlq.metricApproximateNumberOfMessagesVisible({
            label: 'scan-requests DLQ',
            statistic: 'Maximum',
          }),
          props.scanJobsDlq.metricApproximateNumberOfMessagesVisible({ label: 'scan-jobs DLQ', statistic: 'Maximum' }),
          props.resultsMetricsDlq.metricApproximateNumberOfMessagesVisible({
            label: 'results-metrics DLQ',
            statistic: 'Maximum',
          }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'start-scan',
        left: [
          props.startScan.metricInvocations({ statistic: 'Sum' }),
          props.startScan.metricErrors({ statistic: 'Sum' }),
        ],
        right: [props.startScan.metricThrottles({ statistic: 'Sum' })],
        width: 8,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 8 }),
    );
    this.dashboard.addWidgets(...signatureFreshnessWidgets(freshness));
  }
}
