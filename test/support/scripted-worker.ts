import type { S3Client } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type ScanJob, type ScanResult, scanJobSchema } from '../../functions/commons/scan-job.js';
import type { Verdict } from '../../functions/commons/verdict.js';
import { promotionFor } from '../../scanner-image/src/promotion.js';
import { buildScanResult } from '../../scanner-image/src/worker.js';

/**
 * Stands in for the scanner in state machine tests: it takes a real job off the real scan-jobs queue and
 * completes the real task token the way a test needs (a verdict, a named failure, or silence). The ASL's
 * paths are under test here; the real worker is tested in test/worker and driven end to end in test/e2e.
 */
export async function takeScanJob(
  sqs: SQSClient,
  queueUrl: string,
  executionArn: string,
  timeoutMs = 30_000,
): Promise<ScanJob> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
    );
    const message = received.Messages?.[0];
    if (!message) continue;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    const job = scanJobSchema.parse(JSON.parse(message.Body ?? '{}'));
    // Jobs of earlier tests' abandoned attempts may still be queued: only this execution's job counts.
    if (job.executionArn === executionArn) return job;
  }
  throw new Error(`no scan job for ${executionArn} arrived on ${queueUrl} within ${timeoutMs} ms`);
}

/**
 * What the real worker would send for this verdict (its own builder and, for Clean, its own promotion
 * check against the real buckets), from a scripted engine.
 */
export async function scanResultFor(s3: S3Client, job: ScanJob, verdict: Verdict): Promise<ScanResult> {
  const promotion = await promotionFor(s3, job, verdict);
  return buildScanResult(verdict, {
    version: { engine: 'ClamAV 1.4.6', databaseVersion: 'scripted' },
    bytesScanned: job.object.size ?? 0,
    scanMs: 1,
    scannedAt: new Date(),
    object: job.object,
    ...(promotion ? { promotion } : {}),
  });
}

export interface ScriptedClients {
  readonly sfn: SFNClient;
  readonly s3: S3Client;
}

export async function completeWithVerdict(clients: ScriptedClients, job: ScanJob, verdict: Verdict): Promise<void> {
  await clients.sfn.send(
    new SendTaskSuccessCommand({
      taskToken: job.taskToken,
      output: JSON.stringify(await scanResultFor(clients.s3, job, verdict)),
    }),
  );
}

export async function failWith(sfn: SFNClient, job: ScanJob, error: string, cause = 'scripted failure'): Promise<void> {
  await sfn.send(new SendTaskFailureCommand({ taskToken: job.taskToken, error, cause }));
}
