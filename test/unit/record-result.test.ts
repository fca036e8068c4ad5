import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Context, SQSEvent } from 'aws-lambda';
import type { ScanNotification } from '../../functions/commons/scan-notification.js';
import { resultMetrics } from '../../functions/record-result/result-metrics.js';
import { lambdaContext } from '../../local/runtime/sqs-event-source.js';
import { sqsRecord } from '../support/sqs-records.js';

function notification(overrides: Partial<ScanNotification> = {}): ScanNotification {
  return {
    object: { bucket: 'staging', key: 'a.txt', versionId: 'v1', etag: '"e"', size: 3 },
    verdict: 'Clean',
    scan: { verdict: 'Clean' },
    placement: { area: 'destination', bucket: 'clean' },
    failure: null,
    executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:scan-object:a-txt-0',
    ...overrides,
  };
}

describe('resultMetrics', () => {
  it('counts a Clean result once, by verdict', () => {
    expect(resultMetrics(notification())).toEqual([{ name: 'ScanResults', dimensions: { Verdict: 'Clean' } }]);
  });

  it('counts Unscannable and Error results by reason too', () => {
    const unscannable = notification({
      verdict: 'Unscannable',
      scan: { verdict: 'Unscannable', reason: 'encrypted' },
      placement: { area: 'staging' },
    });
    expect(resultMetrics(unscannable)).toContainEqual({
      name: 'ScanResultsByReason',
      dimensions: { Verdict: 'Unscannable', Reason: 'encrypted' },
    });
  });

  it('counts heartbeat loss as one reason, whichever name the engine gives it', () => {
    const reasons = ['States.HeartbeatTimeout', 'States.Timeout'].map(
      (reason) =>
        resultMetrics(
          notification({
            verdict: 'Error',
            scan: { verdict: 'Error', reason },
            placement: { area: 'staging' },
            failure: { Error: reason },
          }),
        )[1]?.dimensions.Reason,
    );
    expect(reasons).toEqual(['States.Timeout', 'States.Timeout']);
  });

  it("does not count an Error verdict's scan failure as a move failure", () => {
    const failed = notification({
      verdict: 'Error',
      scan: { verdict: 'Error', reason: 'AccessDeniedError' },
      placement: { area: 'staging' },
      failure: { Error: 'AccessDeniedError' },
    });
    expect(resultMetrics(failed).map((m) => m.name)).toEqual(['ScanResults', 'ScanResultsByReason']);
  });

  it('counts a Clean object that could not be promoted as a move failure', () => {
    const stuck = notification({ placement: { area: 'staging' }, failure: { Error: 'S3.S3Exception' } });
    expect(resultMetrics(stuck)).toContainEqual({ name: 'MoveFailures', dimensions: {} });
  });
});

type Handler = (event: SQSEvent, context: Context) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
let handler: Handler;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.PIPELINE_NAME = 'prod';
  ({ handler } = (await import('../../functions/record-result/handler.js')) as unknown as { handler: Handler });
});

afterEach(() => {
  jest.restoreAllMocks();
});

const record = (messageId: string, body: string) => sqsRecord(messageId, body, 'results-metrics');

const context = lambdaContext('record-result', 'eu-west-1', Date.now() + 30_000);

describe('record-result handler', () => {
  it('publishes one EMF document per result with the Pipeline and Verdict dimensions', async () => {
    const written: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const infected = notification({
      verdict: 'Infected',
      scan: { verdict: 'Infected', signature: 'Eicar' },
      placement: { area: 'quarantine' },
    });
    // Raw delivery and an SNS envelope are both accepted.
    const result = await handler(
      {
        Records: [
          record('raw', JSON.stringify(infected)),
          record('enveloped', JSON.stringify({ Type: 'Notification', Message: JSON.stringify(notification()) })),
          record('garbage', '{"not":"a result"}'),
        ],
      },
      context,
    );
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'garbage' }]);
    const emf = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(emf).toHaveLength(2);
    expect(emf.map((doc) => [doc.Pipeline, doc.Verdict, doc.ScanResults, doc.service])).toEqual([
      ['prod', 'Infected', 1, undefined],
      ['prod', 'Clean', 1, undefined],
    ]);
  });
});
