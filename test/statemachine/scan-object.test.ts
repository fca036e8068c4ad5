import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { type ScanExecutionInput, buildScanExecutionInput, executionNameFor } from '../../functions/commons/scan-execution.js';
import type { ObjectIdentity } from '../../functions/commons/scan-job.js';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { pinObject } from '../../functions/start-scan/start-scan.js';
import {
  type LocalPipeline,
  executionHistory,
  receiveAll,
  startLocalPipeline,
  statePath,
  waitForExecutionEnd,
} from '../support/local-aws.js';
import { completeWithVerdict, takeScanJob } from '../support/scripted-worker.js';

let pipeline: LocalPipeline;

beforeAll(async () => {
  pipeline = await startLocalPipeline();
}, 60_000);

afterAll(async () => {
  await pipeline?.stop();
});

async function upload(key: string, body: string): Promise<ObjectIdentity> {
  const { s3 } = pipeline.clients;
  await s3.send(new PutObjectCommand({ Bucket: pipeline.layout.buckets.staging, Key: key, Body: body }));
  const identity = await pinObject(s3, { bucket: pipeline.layout.buckets.staging, keyCandidates: [key] });
  if (!identity) throw new Error('uploaded object not found');
  return identity;
}

async function start(identity: ObjectIdentity): Promise<string> {
  const input: ScanExecutionInput = buildScanExecutionInput(identity, [], {
    timing: { heartbeatSeconds: 2, baseTimeoutSeconds: 30, minBytesPerSecond: 1_000_000, maxTimeoutSeconds: 60 },
    copySourceEncoding: 'raw',
  });
  const started = await pipeline.clients.sfn.send(
    new StartExecutionCommand({
      stateMachineArn: pipeline.layout.stateMachineArn,
      name: executionNameFor(identity),
      input: JSON.stringify(input),
    }),
  );
  return started.executionArn ?? '';
}

describe('scan-object on the local engine', () => {
  it('promotes a Clean object to the destination bucket, tagged, and notifies', async () => {
    const identity = await upload('clean/hello world+1%.txt', 'hello');
    const executionArn = await start(identity);
    const job = await takeScanJob(pipeline.clients.sqs, pipeline.layout.queues.scanJobs);
    await completeWithVerdict(pipeline.clients.sfn, job, { verdict: 'Clean' });
    const ended = await waitForExecutionEnd(pipeline.clients, executionArn);
    const history = await executionHistory(pipeline.clients, executionArn);
    console.log(ended.status, ended.output, statePath(history));
    console.log(JSON.stringify(history.filter((e) => e.type?.includes('Failed')), null, 1));
    const tags = await pipeline.clients.s3.send(
      new GetObjectTaggingCommand({ Bucket: pipeline.layout.buckets.destination, Key: identity.key }),
    );
    console.log(tags.TagSet);
    console.log(JSON.stringify(await receiveAll(pipeline.clients.sqs, pipeline.layout.queues.results, 1)));
    expect(ended.status).toBe('SUCCEEDED');
  }, 60_000);
});
