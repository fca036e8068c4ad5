import { Metrics } from '@aws-lambda-powertools/metrics';
import { GetObjectTaggingCommand, HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Context, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { executionNameFor, type ScanExecutionInput } from '../../functions/commons/scan-execution.js';
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
});

/** An S3 error as the SDK throws it; HEAD answers carry no body, so only the status says what happened. */
function s3Error(status: number, name: string): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

interface EventFields {
  readonly etag?: string;
  readonly versionId?: string;
  readonly time?: string;
}

function objectCreatedWith(key: string, fields: EventFields = { etag: 'e1', versionId: 'v1' }): string {
  return JSON.stringify({
    source: 'aws.s3',
    'detail-type': 'Object Created',
    ...(fields.time ? { time: fields.time } : {}),
    detail: {
      bucket: { name: 'staging' },
      object: {
        key,
        size: 42,
        ...(fields.etag ? { etag: fields.etag } : {}),
        ...(fields.versionId ? { 'version-id': fields.versionId } : {}),
      },
    },
  });
}

function startedInputs(): { name: string; input: ScanExecutionInput }[] {
  return sfn.commandCalls(StartExecutionCommand).map((call) => ({
    name: call.args[0].input.name ?? '',
    input: JSON.parse(call.args[0].input.input ?? '{}') as ScanExecutionInput,
  }));
}

describe('every announced object gets an execution, and so a result', () => {
  const time = '2026-03-01T10:20:30Z';

  it('starts an SSE-C object (HeadObject 400) from the event, for the worker to answer Unscannable unsupported-encryption', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error(400, 'BadRequest'));
    const result = await handler(
      { Records: [record('sse-c', objectCreatedWith('secret.bin', { etag: 'e1', versionId: 'v1', time }))] },
      context,
    );

    expect(result.batchItemFailures).toEqual([]);
    const [started, ...more] = startedInputs();
    expect(more).toEqual([]);
    expect(started?.input.object).toMatchObject({
      bucket: 'staging',
      key: 'secret.bin',
      versionId: 'v1',
      etag: '"e1"',
      size: 42,
      uploadedAt: '2026-03-01T10:20:30.000Z',
      tags: [{ Key: 'owner', Value: 'me' }],
    });
    // The same name a HeadObject pin gives (quoted ETag): a duplicate event never starts a second scan.
    expect(started?.name).toBe(
      executionNameFor({ bucket: 'staging', key: 'secret.bin', versionId: 'v1', etag: '"e1"' }),
    );
  });

  it('starts an SSE-C object without owner tags when S3 refuses GetObjectTagging too', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error(400, 'BadRequest'));
    s3.on(GetObjectTaggingCommand).rejects(s3Error(403, 'AccessDenied'));
    const result = await handler({ Records: [record('sse-c', objectCreatedWith('secret.bin'))] }, context);

    expect(result.batchItemFailures).toEqual([]);
    expect(startedInputs().map((s) => s.input.object.tags)).toEqual([[]]);
  });

  it('starts an object deleted before its event was handled, for the execution to report it (Unscannable deleted)', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error(404, 'NotFound'));
    const result = await handler(
      { Records: [record('gone', objectCreatedWith('gone.txt', { etag: 'e1', versionId: 'v1', time }))] },
      context,
    );

    expect(result.batchItemFailures).toEqual([]);
    expect(startedInputs().map((s) => s.input.object)).toEqual([
      expect.objectContaining({ key: 'gone.txt', versionId: 'v1', etag: '"e1"', size: 42, tags: [] }),
    ]);
    // Nothing is left to read tags from.
    expect(s3.commandCalls(GetObjectTaggingCommand)).toHaveLength(0);
  });

  it('tries every key reading before concluding the object is gone', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error(404, 'NotFound'));
    await handler({ Records: [record('gone', objectCreatedWith('a+b.txt'))] }, context);

    expect(s3.commandCalls(HeadObjectCommand).map((call) => call.args[0].input.Key)).toEqual(['a+b.txt', 'a b.txt']);
    expect(startedInputs().map((s) => s.input.object.key)).toEqual(['a+b.txt']);
  });

  it('never takes a 403 for "gone": another reading that exists is pinned, else the record fails', async () => {
    s3.on(HeadObjectCommand, { Key: 'a+b.txt' }).rejects(s3Error(403, 'Forbidden'));
    s3.on(HeadObjectCommand, { Key: 'a b.txt' }).resolves({ ETag: '"e1"', VersionId: 'v1', ContentLength: 42 });
    const found = await handler({ Records: [record('found', objectCreatedWith('a+b.txt'))] }, context);
    expect(found.batchItemFailures).toEqual([]);
    expect(startedInputs().map((s) => s.input.object.key)).toEqual(['a b.txt']);

    sfn.resetHistory();
    s3.on(HeadObjectCommand, { Key: 'a b.txt' }).rejects(s3Error(404, 'NotFound'));
    // With a good record beside it: a batch whose every record fails is thrown whole by Powertools.
    const denied = await handler(
      { Records: [record('denied', objectCreatedWith('a+b.txt')), record('fine', objectCreatedWith('fine.txt'))] },
      context,
    );
    expect(denied.batchItemFailures).toEqual([{ itemIdentifier: 'denied' }]);
    expect(startedInputs().map((s) => s.input.object.key)).toEqual(['fine.txt']);
  });

  it('fails the record (for the DLQ) rather than guess when the object cannot be read and the event has no ETag', async () => {
    s3.on(HeadObjectCommand, { Key: 'gone.txt' }).rejects(s3Error(404, 'NotFound'));
    const result = await handler(
      {
        Records: [
          record('no-etag', objectCreatedWith('gone.txt', { versionId: 'v1' })),
          record('fine', objectCreatedWith('fine.txt')),
        ],
      },
      context,
    );
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'no-etag' }]);
    expect(startedInputs().map((s) => s.input.object.key)).toEqual(['fine.txt']);
  });

  it("records the event's time as the upload time only when HeadObject gives none", async () => {
    s3.on(HeadObjectCommand).resolves({ ETag: '"e1"', VersionId: 'v1', ContentLength: 42 });
    await handler(
      { Records: [record('no-date', objectCreatedWith('a.txt', { etag: 'e1', versionId: 'v1', time }))] },
      context,
    );
    s3.on(HeadObjectCommand).resolves({
      ETag: '"e2"',
      VersionId: 'v2',
      ContentLength: 42,
      LastModified: new Date('2026-03-01T10:20:29Z'),
    });
    await handler(
      { Records: [record('dated', objectCreatedWith('b.txt', { etag: 'e2', versionId: 'v2', time }))] },
      context,
    );

    expect(startedInputs().map((s) => s.input.object.uploadedAt)).toEqual([
      '2026-03-01T10:20:30.000Z',
      '2026-03-01T10:20:29.000Z',
    ]);
  });
});

describe('an object without a version id', () => {
  let addMetric: jest.SpiedFunction<Metrics['addMetric']>;
  beforeEach(() => {
    addMetric = jest.spyOn(Metrics.prototype, 'addMetric');
  });
  afterEach(() => {
    addMetric.mockRestore();
  });
  const metricNames = () => addMetric.mock.calls.map((call) => call[0]);

  it.each([
    ['an unversioned bucket (no version id)', undefined],
    ['versioning suspended (the null version)', 'null'],
  ])(
    'in %s counts UnversionedObjects and still starts the scan, for the worker to refuse',
    async (_what, versionId) => {
      s3.on(HeadObjectCommand).resolves({
        ETag: '"e1"',
        ContentLength: 42,
        ...(versionId ? { VersionId: versionId } : {}),
      });
      const result = await handler(
        { Records: [record('unversioned', objectCreatedWith('plain.txt', { etag: 'e1' }))] },
        context,
      );

      expect(result.batchItemFailures).toEqual([]);
      expect(metricNames()).toEqual(expect.arrayContaining(['ScansStarted', 'UnversionedObjects']));
      expect(metricNames().filter((name) => name === 'UnversionedObjects')).toHaveLength(1);
      expect(startedInputs().map((s) => s.input.object.versionId)).toEqual(['null']);
    },
  );

  it('is not what a versioned object counts', async () => {
    await handler({ Records: [record('versioned', objectCreated('staging', 'v.txt'))] }, context);
    expect(metricNames()).toEqual(['ScansStarted']);
  });
});
