import { PutObjectCommand } from '@aws-sdk/client-s3';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseScanRequest } from '../../functions/start-scan/object-events.js';
import type { RetroScanInput } from '../../statemachines/retro-scan.js';
import { type LocalPipeline, startLocalPipeline, waitForExecutionEnd } from '../support/local-aws.js';

const OBJECTS = Number(process.env.RETRO_TEST_OBJECTS ?? 1000);

let pipeline: LocalPipeline;

beforeAll(async () => {
  pipeline = await startLocalPipeline();
}, 60_000);

afterAll(async () => {
  await pipeline?.stop();
});

async function putMany(bucket: string, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 20) {
    await Promise.all(
      keys
        .slice(i, i + 20)
        .map((Key) => pipeline.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))),
    );
  }
}

/** Every message on a queue, drained: each must be a valid scan request. */
async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const received = await pipeline.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return bodies;
    bodies.push(...messages.map((m) => m.Body ?? ''));
    await pipeline.clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
      }),
    );
  }
}

describe('retro-scan, the production ASL on the local engine', () => {
  it(`requests a scan of each of ${OBJECTS} objects under the prefix exactly once, with the run's generation and filter`, async () => {
    const { staging } = pipeline.layout.buckets;
    const keys = Array.from({ length: OBJECTS }, (_, i) => `old/${String(i).padStart(5, '0')}.txt`);
    await putMany(staging, [...keys, 'other/not-listed.txt', 'olderprefix.txt']);
    const input: RetroScanInput = {
      bucket: staging,
      prefix: 'old/',
      generation: { trigger: 'retro', id: 'run-1000' },
      filter: { verdicts: ['Error'] },
      maxConcurrency: 2,
      toleratedFailureCount: 0,
    };
    const started = await pipeline.clients.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: pipeline.layout.retroScanStateMachineArn,
        name: 'run-1000',
        input: JSON.stringify(input),
      }),
    );
    const ended = await waitForExecutionEnd(pipeline.clients, started.executionArn ?? '', 300_000);
    expect(ended.status).toBe('SUCCEEDED');
    expect(JSON.parse(ended.output ?? '{}')).toMatchObject({ requested: { batches: expect.any(Number) } });

    const requested: string[] = [];
    for (const body of await drain(pipeline.layout.queues.scanRequests)) {
      // The uploads above were announced too (EventBridge → scan-requests): those are not the run's.
      if (!body.includes('"scanflow"')) continue;
      const parsed = parseScanRequest(body);
      if (parsed.kind !== 'objects') throw new Error(`not a scan request: ${body}`);
      for (const object of parsed.objects) {
        expect(object).toMatchObject({ bucket: staging, generation: input.generation, filter: input.filter });
        requested.push(object.keyCandidates[0] ?? '');
      }
    }
    expect(requested.sort()).toEqual(keys);
  }, 400_000);
});
