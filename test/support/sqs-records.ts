import type { SQSRecord } from 'aws-lambda';

/** An SQS record as Lambda delivers it, for handler unit tests. */
export function sqsRecord(messageId: string, body: string, queueName = 'queue'): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:${queueName}`,
    awsRegion: 'eu-west-1',
  };
}
