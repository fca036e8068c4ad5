import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export type SqsLambdaHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface SqsEventSourceOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly region: string;
  readonly functionName: string;
  readonly handler: SqsLambdaHandler;
  /** Lambda's default for SQS sources is 10. */
  readonly batchSize?: number;
  readonly timeoutMs?: number;
  readonly onError?: (error: unknown) => void;
}

export interface RunningEventSource {
  /** Records handled so far, and how many of them the handler reported as failed. */
  stats(): { readonly succeeded: number; readonly failed: number };
  stop(): Promise<void>;
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** A Lambda context as the runtime passes it: what Powertools and the handlers read. */
export function lambdaContext(functionName: string, region: string, deadline: number): Context {
  const requestId = crypto.randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${requestId}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * Runs a Lambda handler the way an SQS event source mapping does: long-poll a batch, invoke, then delete the
 * records that succeeded. With ReportBatchItemFailures the listed records stay on the queue and come back
 * after their visibility timeout (then to the DLQ); a thrown error leaves the whole batch.
 */
export async function startSqsEventSource(options: SqsEventSourceOptions): Promise<RunningEventSource> {
  const { sqs, queueUrl, region } = options;
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const queueArn = attrs.Attributes?.QueueArn ?? queueUrl;
  const controller = new AbortController();
  const counts = { succeeded: 0, failed: 0 };

  const loop = (async () => {
    while (!controller.signal.aborted) {
      let messages: Message[];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: options.batchSize ?? 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: controller.signal },
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (controller.signal.aborted) return;
        options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (messages.length === 0) continue;

      const records = messages.map((message) => toRecord(message, queueArn, region));
      let failed: Set<string>;
      try {
        const deadline = Date.now() + (options.timeoutMs ?? 30_000);
        const response = await options.handler(
          { Records: records },
          lambdaContext(options.functionName, region, deadline),
        );
        failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
      } catch (error) {
        options.onError?.(error);
        counts.failed += records.length;
        continue; // the whole batch is retried after its visibility timeout
      }
      const succeeded = records.filter((record) => !failed.has(record.messageId));
      counts.succeeded += succeeded.length;
      counts.failed += records.length - succeeded.length;
      if (succeeded.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: succeeded.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
          }),
        );
      }
    }
  })();

  return {
    stats: () => ({ ...counts }),
    async stop() {
      controller.abort();
      await loop;
    },
  };
}
