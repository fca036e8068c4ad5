import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { moveFailed, parseScanNotification, type ScanNotification } from '../../functions/commons/scan-notification.js';

export type { ScanNotification };

export interface ReceivedResult {
  readonly notification: ScanNotification;
  readonly receivedAt: number;
}

/** Reads the queue subscribed to the results topic, unwrapping the SNS envelope. */
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
  return messages.map((message) => ({ notification: parseScanNotification(message.Body ?? ''), receivedAt }));
}

export function executionNameOf(executionArn: string): string {
  return executionArn.split(':').pop() ?? executionArn;
}

/** "quarantine (bucket)" / "destination (bucket)" / "staging (blocked)" — where an operator finds the object. */
export function describePlacement(notification: ScanNotification): string {
  const { placement } = notification;
  if (placement.area === 'staging') return moveFailed(notification) ? 'staging (move failed)' : 'staging (blocked)';
  return `${placement.area} (${placement.bucket ?? '?'})`;
}

export function describeReason(notification: ScanNotification): string {
  const { scan } = notification;
  if (scan.verdict === 'Infected') return scan.signature ?? '';
  const reason = scan.reason ?? '';
  return scan.scanVerdict ? `${reason} (scan said ${scan.scanVerdict})` : reason;
}
