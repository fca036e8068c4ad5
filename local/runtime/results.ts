import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { moveFailed, parseScanNotification, type ScanNotification } from '../../functions/commons/scan-notification.js';

export type { ScanNotification };

export interface ReceivedResult {
  readonly notification: ScanNotification;
  /** The SNS message attributes subscribers filter on (`verdict`, `bucket`). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly receivedAt: number;
}

/** Reads (and deletes) what the queue subscribed to the results topic holds, unwrapping the SNS envelope. */
export async function receiveResults(sqs: SQSClient, queueUrl: string, waitTimeSeconds = 1): Promise<ReceivedResult[]> {
  const received = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitTimeSeconds }),
  );
  const messages = received.Messages ?? [];
  if (messages.length === 0) return [];
  const receivedAt = Date.now();
  await sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
    }),
  );
  return messages.map((message) => {
    const envelope = JSON.parse(message.Body ?? '{}') as {
      Message?: string;
      MessageAttributes?: Record<string, { Value: string }>;
    };
    return {
      notification: parseScanNotification(envelope.Message ?? ''),
      attributes: Object.fromEntries(
        Object.entries(envelope.MessageAttributes ?? {}).map(([name, attribute]) => [name, attribute.Value]),
      ),
      receivedAt,
    };
  });
}

export function executionNameOf(executionArn: string): string {
  return executionArn.split(':').pop() ?? executionArn;
}

/** "quarantine (bucket)" / "destination (bucket)" / "staging (blocked)" — where an operator finds the object. */
export function describePlacement(notification: ScanNotification): string {
  const { placement } = notification;
  if (placement.area === 'staging') return moveFailed(notification) ? 'staging (move failed)' : 'staging (blocked)';
  return placement.bucket === undefined ? placement.area : `${placement.area} (${placement.bucket})`;
}

export function describeReason(notification: ScanNotification): string {
  const { scan } = notification;
  if (scan.verdict === 'Infected') return scan.signature ?? '';
  const reason = scan.reason ?? '';
  return scan.scanVerdict ? `${reason} (scan said ${scan.scanVerdict})` : reason;
}
