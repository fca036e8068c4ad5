import { GetObjectTaggingCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Context, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { ScanExecutionInput } from '../../functions/commons/scan-execution.js';
import { lambdaContext } from '../../local/runtime/sqs-event-source.js';
import { sqsRecord } from '../support/sqs-records.js';

const s3 = mockClient(S3Client);
const sfn = mockClient(SFNClient);

type Handler = (event: SQSEvent, context: Context) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
let handler: Handler;

beforeAll(async () => {
  // The handler reads its configuration once, at cold start, like on Lambda.
  process.env.STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:scan-object';
  process.env.PIPELINE_BUCKETS = 'clean,quarantine';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.AWS_REGION = 'eu-west-1';
  ({ handler } = (await import('../../functions/start-scan/handler.js')) as unknown as { handler: Handler });
});

beforeEach(() => {
  s3.reset();
  sfn.reset();
  s3.on(HeadObjectCommand).resolves({ ETag: '"e1"', VersionId: 'v1', ContentLength: 42 });
  s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'owner', Value: 'me' }] });
  sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:exec', startDate: new Date() });
});

const record = (messageId: string, body: string) => sqsRecord(messageId, body, 'scan-requests');

function objectCreated(bucket: string, key: string): string {
  return JSON.stringify({
    source: 'aws.s3',
    'detail-type': 'Object Created',
    detail: { bucket: { name: bucket }, object: { key, size: 42, etag: 'e1', 'version-id': 'v1' } },
  });
}

const context = lambdaContext('start-scan', 'eu-west-1', Date.now() + 30_000);

describe('start-scan handler', () => {
  it('starts an execution named after the object with the pinned identity and the owner tags', async () => {
    const result = await handler({ Records: [record('m1', objectCreated('staging', 'docs/a.pdf'))] }, context);

    expect(result.batchItemFailures).toEqual([]);
    const calls = sfn.commandCalls(StartExecutionCommand);
    expect(calls).toHaveLength(1);
    const input = JSON.parse(calls[0]?.args[0].input.input ?? '{}') as ScanExecutionInput;
    expect(input.object).toMatchObject({
      bucket: 'staging',
      key: 'docs/a.pdf',
      versionId: 'v1',
      etag: '"e1"',
      size: 42,
    });
    expect(input.object.tags).toEqual([{ Key: 'owner', Value: 'me' }]);
    expect(calls[0]?.args[0].input.name).toMatch(/^a-pdf-[0-9a-f]{32}$/);
    expect(s3.commandCalls(HeadObjectCommand)[0]?.args[0].input).toMatchObject({ VersionId: 'v1' });
  });

  it('reports only the failing records so the rest of the batch is not redelivered', async () => {
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => {
      if (input.name?.startsWith('boom')) throw new Error('throttled');
      return { executionArn: 'arn:exec', startDate: new Date() };
    });
    const result = await handler(
      {
        Records: [
          record('good', objectCreated('staging', 'ok.txt')),
          record('garbage', 'not json'),
          record('throttled', objectCreated('staging', 'boom.txt')),
        ],
      },
      context,
    );
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['garbage', 'throttled']);
  });

  it('counts ExecutionAlreadyExists as success: the scan is already under way or done', async () => {
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    const result = await handler({ Records: [record('dup', objectCreated('staging', 'again.txt'))] }, context);
    expect(result.batchItemFailures).toEqual([]);
  });

  it('never scans what the pipeline itself wrote to its destination or quarantine buckets', async () => {
    const result = await handler({ Records: [record('own', objectCreated('clean', 'promoted.txt'))] }, context);
    expect(result.batchItemFailures).toEqual([]);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('starts nothing for an object deleted before its event was handled', async () => {
    s3.on(HeadObjectCommand).rejects(
      Object.assign(new (await import('@aws-sdk/client-s3')).NotFound({ message: 'gone', $metadata: {} }), {
        $metadata: { httpStatusCode: 404 },
      }),
    );
    const result = await handler({ Records: [record('gone', objectCreated('staging', 'gone.txt'))] }, context);
    expect(result.batchItemFailures).toEqual([]);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});
