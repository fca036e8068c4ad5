import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseScanNotification } from '../commons/scan-notification.js';
import { resultMetrics } from './result-metrics.js';

/**
 * The pipeline's last step: count every object's final verdict. It reads the results topic through a
 * queue, so it sees exactly what subscribers see — including Error verdicts the state machine decided
 * without a worker (heartbeat loss, tag-limit) — and nothing is counted twice when a scan is retried.
 */
const logger = new Logger({ serviceName: 'record-result' });
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Scanflow' });
// Same dimensions as the worker's metrics ({Pipeline, …}), not Powertools' default `service`.
metrics.clearDefaultDimensions();
metrics.setDefaultDimensions({ Pipeline: process.env.PIPELINE_NAME ?? 'scanflow' });
const processor = new BatchProcessor(EventType.SQS);

async function handleRecord(record: SQSRecord): Promise<void> {
  const notification = parseScanNotification(record.body);
  for (const metric of resultMetrics(notification)) {
    metrics.addDimensions({ ...metric.dimensions });
    metrics.addMetric(metric.name, MetricUnit.Count, 1);
    // One EMF document per dimension set: dimensions apply to every metric published with them.
    metrics.publishStoredMetrics();
  }
  logger.info('result recorded', {
    key: notification.object.key,
    verdict: notification.verdict,
    reason: notification.scan.reason,
    executionArn: notification.executionArn,
  });
}

const lambdaHandler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, handleRecord, processor, { context });

export const handler = middy(lambdaHandler).use(injectLambdaContext(logger));
