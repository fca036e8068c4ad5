import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/**
 * The local stand-in for SQS StartMessageMoveTask (`aws sqs start-message-move-task --source-arn <dlq arn>`,
 * the documented redrive, README "Operations"), which moto 5.2.5 does not implement: every message of the
 * dead-letter queue is sent, body unchanged, to its source queue, then deleted from the DLQ. What the source
 * queue's consumer sees is the same either way: the original message body, received afresh.
 * Returns how many messages were moved.
 */
export async function moveMessages(sqs: SQSClient, fromQueueUrl: string, toQueueUrl: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: fromQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return moved;
    for (const message of messages) {
      await sqs.send(new SendMessageCommand({ QueueUrl: toQueueUrl, MessageBody: message.Body ?? '' }));
      await sqs.send(new DeleteMessageCommand({ QueueUrl: fromQueueUrl, ReceiptHandle: message.ReceiptHandle }));
      moved += 1;
    }
  }
}
