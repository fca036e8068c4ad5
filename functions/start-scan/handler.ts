import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createS3Client, createSfnClient } from '../commons/clients.js';
import { loadStartScanConfig } from './config.js';
import { parseScanRequest } from './object-events.js';
import { startScan } from './start-scan.js';

// Created once per container, as Lambda reuses them across invocations. A bad environment fails the
// cold start with a message naming the variable, rather than every record later.
const config = loadStartScanConfig(process.env);
const logger = new Logger({ serviceName: 'start-scan' });
const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Scanflow',
  serviceName: 'start-scan',
});
const s3 = createS3Client();
const sfn = createSfnClient();
const processor = new BatchProcessor(EventType.SQS);

const outcomeMetric = {
  started: 'ScansStarted',
  duplicate: 'DuplicateEvents',
  skipped: 'ObjectsSkipped',
  gone: 'ObjectsGoneBeforeScan',
} as const;

/** One SQS record; throwing marks only this record as failed (batchItemFailures) for redelivery. */
async function handleRecord(record: SQSRecord): Promise<void> {
  const parsed = parseScanRequest(record.body);
  if (parsed.kind === 'ignored') {
    logger.info('ignored message', { messageId: record.messageId, reason: parsed.reason });
    return;
  }
  for (const announced of parsed.objects) {
    const result = await startScan(announced, { s3, sfn, config });
    metrics.addMetric(outcomeMetric[result.outcome], MetricUnit.Count, 1);
    logger.info(`scan ${result.outcome}`, { messageId: record.messageId, ...result });
  }
}

const lambdaHandler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, handleRecord, processor, { context });

export const handler = middy(lambdaHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics));
