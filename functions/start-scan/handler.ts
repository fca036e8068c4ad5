import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createS3Client, createSfnClient } from '../commons/clients.js';
import { PIPELINE_ERROR_REASONS } from '../commons/verdict.js';
import { loadStartScanConfig } from './config.js';
import { START_EXECUTION_RETRY } from './delivery.js';
import { outcomeMetrics } from './metrics.js';
import { parseScanRequest } from './object-events.js';
import { startScan } from './start-scan.js';

// Created once per container, as Lambda reuses them across invocations. A bad environment fails the
// cold start with a message naming the variable, rather than every record later.
const config = loadStartScanConfig(process.env);
const logger = new Logger({ serviceName: 'start-scan' });
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Scanflow' });
// Same dimensions as the worker's and record-result's metrics, so an alarm can name the pipeline.
metrics.clearDefaultDimensions();
metrics.setDefaultDimensions({ Pipeline: process.env.PIPELINE_NAME ?? 'scanflow' });
const s3 = createS3Client();
// A burst can meet Step Functions' StartExecution throttling: retried here (see delivery.ts), not by
// sending the record back to the queue after three quick tries.
const sfn = createSfnClient({ retry: START_EXECUTION_RETRY });
const processor = new BatchProcessor(EventType.SQS);

/** One SQS record; throwing marks only this record as failed (batchItemFailures) for redelivery. */
async function handleRecord(record: SQSRecord): Promise<void> {
  const parsed = parseScanRequest(record.body);
  if (parsed.kind === 'ignored') {
    logger.info('ignored message', { messageId: record.messageId, reason: parsed.reason });
    return;
  }
  for (const announced of parsed.objects) {
    const result = await startScan(announced, { s3, sfn, config });
    for (const name of outcomeMetrics(result)) metrics.addMetric(name, MetricUnit.Count, 1);
    logger.info(`scan ${result.outcome}`, { messageId: record.messageId, ...result });
    if (result.outcome === 'skipped') continue;
    for (const warning of result.warnings) logger.warn(warning, { messageId: record.messageId, ...result.identity });
    if (result.unversioned) {
      // Not silence: the scan still runs and ends as Error, but the bucket must be fixed by someone.
      logger.error(
        `s3://${result.identity.bucket} is not versioned (or versioning is suspended): the pipeline cannot name exactly this upload, so its verdict is Error ${PIPELINE_ERROR_REASONS.unversionedBucket}; enable versioning on the bucket`,
        { messageId: record.messageId, ...result.identity },
      );
    }
  }
}

const lambdaHandler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, handleRecord, processor, { context });

export const handler = middy(lambdaHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics));
