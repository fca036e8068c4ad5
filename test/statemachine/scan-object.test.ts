import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildScanExecutionInput, executionNameFor } from '../../functions/commons/scan-execution.js';
import type { ScanJob } from '../../functions/commons/scan-job.js';
import type { S3Tag } from '../../functions/commons/verdict.js';
import type { StartScanConfig } from '../../functions/start-scan/config.js';
import { parseScanRequest } from '../../functions/start-scan/object-events.js';
import { startScan } from '../../functions/start-scan/start-scan.js';
import { waitFor } from '../../local/runtime/processes.js';
import { type ReceivedResult, receiveResults } from '../../local/runtime/results.js';
import {
  executionHistory,
  type LocalPipeline,
  listExecutionArns,
  startLocalPipeline,
  statePath,
  waitForExecutionEnd,
} from '../support/local-aws.js';
import { completeWithVerdict, failWith, takeScanJob } from '../support/scripted-worker.js';

/** Step Functions Standard bills per transition; the design promises at most six on every path. */
const MAX_TRANSITIONS = 6;

/** The state paths the tests expect most often. */
const PROMOTED_PATH = [
  'ScanObject',
  'TagVerdict',
  'RouteByVerdict',
  'PromoteObject',
  'RemoveFromStaging',
  'NotifyResult',
];
const QUARANTINED_PATH = [
  'ScanObject',
  'TagVerdict',
  'RouteByVerdict',
  'QuarantineObject',
  'RemoveFromStaging',
  'NotifyResult',
];
const SUPERSEDED_PATH = ['ScanObject', 'TagVerdict', 'RouteByVerdict', 'RemoveSupersededVersion', 'NotifyResult'];

let pipeline: LocalPipeline;
let config: StartScanConfig;
let staging: string;
let destination: string;
let quarantine: string;

beforeAll(async () => {
  pipeline = await startLocalPipeline();
  ({ staging, destination, quarantine } = pipeline.layout.buckets);
  config = {
    stateMachineArn: pipeline.layout.stateMachineArn,
    pipelineBuckets: new Set([pipeline.layout.buckets.destination, pipeline.layout.buckets.quarantine]),
    excludedKeyPrefixes: ['ignored/'],
    excludedKeySuffixes: [],
    timing: { queueWaitSeconds: 60, baseTimeoutSeconds: 60, minBytesPerSecond: 1_000_000, maxTimeoutSeconds: 300 },
    copySourceEncoding: 'raw',
  };
}, 60_000);

afterAll(async () => {
  await pipeline?.stop();
  // Stopping waits for the worker's last long poll (up to its poll wait) and for the servers to exit.
}, 60_000);

function tagging(tags: readonly S3Tag[]): string {
  return tags.map((t) => `${encodeURIComponent(t.Key)}=${encodeURIComponent(t.Value)}`).join('&');
}

async function upload(key: string, body: string, tags: readonly S3Tag[] = []): Promise<void> {
  await pipeline.clients.s3.send(
    new PutObjectCommand({
      Bucket: pipeline.layout.buckets.staging,
      Key: key,
      Body: body,
      ...(tags.length ? { Tagging: tagging(tags) } : {}),
    }),
  );
}

interface Started {
  readonly executionArn: string;
  readonly key: string;
  readonly versionId: string;
}

/** Uploads, then starts the scan the way start-scan does for an event naming this key. */
async function uploadAndStart(
  key: string,
  body = 'content',
  tags: readonly S3Tag[] = [],
  startConfig: StartScanConfig = config,
): Promise<Started> {
  await upload(key, body, tags);
  const outcome = await startScan(
    { bucket: pipeline.layout.buckets.staging, keyCandidates: [key] },
    { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config: startConfig },
  );
  if (outcome.outcome !== 'started') throw new Error(`expected a started execution, got ${outcome.outcome}`);
  const accountAndMachine = pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:');
  return {
    executionArn: `${accountAndMachine}:${outcome.executionName}`,
    key,
    versionId: outcome.identity.versionId ?? 'null',
  };
}

async function job(started: Started): Promise<ScanJob> {
  return takeScanJob(pipeline.clients.sqs, pipeline.layout.queues.scanJobs, started.executionArn);
}

async function tagsOf(bucket: string, key: string, versionId?: string): Promise<S3Tag[]> {
  const result = await pipeline.clients.s3.send(
    new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId }),
  );
  return (result.TagSet ?? []).map((t) => ({ Key: t.Key ?? '', Value: t.Value ?? '' }));
}

function tagMap(tags: readonly S3Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.Key, t.Value]));
}

async function exists(bucket: string, key: string, versionId?: string): Promise<boolean> {
  try {
    await pipeline.clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return true;
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return false;
    throw error;
  }
}

/** The SNS notification for one execution, read from the queue subscribed to the results topic. */
async function notificationFor(executionArn: string): Promise<ReceivedResult> {
  const seen: ReceivedResult[] = [];
  let found: ReceivedResult | undefined;
  await waitFor(
    `the result notification of ${executionArn}`,
    async () => {
      // Parsed with the schema every subscriber uses: a path whose message drifts from it fails here.
      seen.push(...(await receiveResults(pipeline.clients.sqs, pipeline.layout.queues.results)));
      found = seen.find((result) => result.notification.executionArn === executionArn);
      return found !== undefined;
    },
    15_000,
  );
  if (!found) throw new Error('unreachable');
  return found;
}

/**
 * Uploads and starts a scan, takes its job, then deletes the object while the scan is "running": either the
 * scanned version itself (gone for good) or, as a plain delete in a versioned bucket does, only a delete marker.
 */
async function startThenDelete(
  key: string,
  what: 'version' | 'marker',
): Promise<{ started: Started; scanJob: ScanJob }> {
  const started = await uploadAndStart(key);
  const scanJob = await job(started);
  await pipeline.clients.s3.send(
    new DeleteObjectCommand({
      Bucket: staging,
      Key: started.key,
      ...(what === 'version' ? { VersionId: started.versionId } : {}),
    }),
  );
  return { started, scanJob };
}

async function bodyOf(bucket: string, key: string): Promise<string> {
  const object = await pipeline.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await object.Body?.transformToString()) ?? '';
}

/** Waits until the clock has entered the next second, so the next upload's LastModified is later. */
async function nextSecond(): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  await waitFor('the next second', async () => Math.floor(Date.now() / 1000) > now, 2_000);
}

/** Waits for the execution; every path must succeed (failures are handled, not thrown) within the budget. */
async function finish(started: Started): Promise<string[]> {
  const ended = await waitForExecutionEnd(pipeline.clients, started.executionArn);
  expect(ended.status).toBe('SUCCEEDED');
  const path = statePath(await executionHistory(pipeline.clients, started.executionArn));
  expect(path.length).toBeLessThanOrEqual(MAX_TRANSITIONS);
  return path;
}

describe('scan-object, the production ASL on the local engine', () => {
  it('promotes a Clean object to the destination with its tags and the verdict, and notifies', async () => {
    const started = await uploadAndStart('clean/report.txt', 'hello', [{ Key: 'owner', Value: 'team-a' }]);
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Clean' });

    const path = await finish(started);
    expect(path).toEqual(PROMOTED_PATH);
    const promoted = await pipeline.clients.s3.send(new GetObjectCommand({ Bucket: destination, Key: started.key }));
    expect(await promoted.Body?.transformToString()).toBe('hello');
    // Only tags with a value: for Clean that is the result, the upload time promotion orders by, when, and the DB.
    const promotedTags = tagMap(await tagsOf(destination, started.key));
    expect(Object.keys(promotedTags).sort()).toEqual(
      ['owner', 'scan-database', 'scan-result', 'scan-time', 'scan-uploaded'].sort(),
    );
    expect(promotedTags).toMatchObject({ owner: 'team-a', 'scan-result': 'Clean', 'scan-database': 'scripted' });
    expect(promotedTags['scan-uploaded']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    expect(await exists(staging, started.key, started.versionId)).toBe(false);

    const result = await notificationFor(started.executionArn);
    expect(result.attributes).toEqual({ verdict: 'Clean', bucket: staging });
    expect(result.notification).toMatchObject({
      object: { bucket: staging, key: started.key, versionId: started.versionId },
      verdict: 'Clean',
      placement: { area: 'destination', bucket: destination },
      failure: null,
    });
  }, 60_000);

  it('quarantines an Infected object with the signature, discarding scan tags the uploader forged in any case', async () => {
    const started = await uploadAndStart('infected/eicar.com', 'X5O!P%@AP', [
      { Key: 'scan-result', Value: 'Clean' },
      { Key: 'Scan-Result', Value: 'Clean' },
      { Key: 'SCAN-signature', Value: 'none' },
      { Key: 'project', Value: 'p1' },
    ]);
    await completeWithVerdict(pipeline.clients, await job(started), {
      verdict: 'Infected',
      signature: 'Eicar-Signature',
    });

    const path = await finish(started);
    expect(path).toEqual(QUARANTINED_PATH);
    const tags = await tagsOf(quarantine, started.key);
    expect(tags.filter((t) => t.Key.toLowerCase() === 'scan-result')).toEqual([
      { Key: 'scan-result', Value: 'Infected' },
    ]);
    expect(tags.filter((t) => t.Key.toLowerCase().startsWith('scan-') && !t.Key.startsWith('scan-'))).toEqual([]);
    expect(tagMap(tags)).toMatchObject({ project: 'p1', 'scan-signature': 'Eicar-Signature' });
    expect(await exists(staging, started.key, started.versionId)).toBe(false);
    expect(await exists(destination, started.key)).toBe(false);

    const result = await notificationFor(started.executionArn);
    expect(result.attributes.verdict).toBe('Infected');
    expect(result.notification.scan.signature).toBe('Eicar-Signature');
    expect(result.notification.placement).toEqual({ area: 'quarantine', bucket: quarantine });
  }, 60_000);

  it('leaves an Unscannable object blocked in staging, tagged with the reason', async () => {
    const started = await uploadAndStart('unscannable/secret.zip');
    await completeWithVerdict(pipeline.clients, await job(started), {
      verdict: 'Unscannable',
      reason: 'encrypted',
    });

    const path = await finish(started);
    expect(path).toEqual(['ScanObject', 'TagVerdict', 'RouteByVerdict', 'NotifyResult']);
    expect(tagMap(await tagsOf(staging, started.key, started.versionId))).toMatchObject({
      'scan-result': 'Unscannable',
      'scan-reason': 'encrypted',
    });
    expect(await exists(destination, started.key)).toBe(false);
    expect(await exists(quarantine, started.key)).toBe(false);
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({ verdict: 'Unscannable', placement: { area: 'staging' } });
    expect(result.notification.scan.reason).toBe('encrypted');
  }, 60_000);

  it('tags Error with the failure name and notifies when the worker reports a failure', async () => {
    const started = await uploadAndStart('error/denied.bin');
    await failWith(pipeline.clients.sfn, await job(started), 'AccessDeniedError');

    const path = await finish(started);
    expect(path).toEqual(['ScanObject', 'RecordScanError', 'TagVerdict', 'RouteByVerdict', 'NotifyResult']);
    // The two tags that always fit; when it happened is in the notification.
    expect(tagMap(await tagsOf(staging, started.key, started.versionId))).toEqual({
      'scan-result': 'Error',
      'scan-reason': 'AccessDeniedError',
    });
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({ verdict: 'Error', failure: { Error: 'AccessDeniedError' } });
    expect(String(result.notification.scan.scannedAt)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(result.attributes.verdict).toBe('Error');
  }, 60_000);

  it("retries a scan when the scanner was unavailable, and takes the next attempt's verdict", async () => {
    const started = await uploadAndStart('retry/flaky.txt');
    await failWith(pipeline.clients.sfn, await job(started), 'ScannerUnavailableError');
    // The retry sends a new job with a new task token.
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Clean' });

    const path = await finish(started);
    expect(path[0]).toBe('ScanObject');
    expect(path).toContain('PromoteObject');
    expect(await exists(destination, started.key)).toBe(true);
  }, 60_000);

  it('gives a job that waited in scan-jobs for a worker its verdict: waiting is not worker silence', async () => {
    const started = await uploadAndStart('waiting/cold-start.txt', 'scanned at last');
    // No worker for a while (a scale-out from zero takes minutes on AWS): longer than the old 2 s heartbeat
    // timeout and both of its retries. The scenario under test, not a wait for a result.
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Clean' });

    const path = await finish(started);
    expect(path).toEqual(PROMOTED_PATH);
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({ verdict: 'Clean', failure: null });
  }, 90_000);

  it('ends as Error States.Timeout, with one job and no retry, when no worker takes it before its timeout', async () => {
    const short: StartScanConfig = {
      ...config,
      // Timeout = queue wait + base + size ÷ rate = 1 + 2 + 1 s.
      timing: { queueWaitSeconds: 1, baseTimeoutSeconds: 2, minBytesPerSecond: 1_000_000, maxTimeoutSeconds: 10 },
    };
    const started = await uploadAndStart('timeout/nobody-came.txt', 'content', [], short);

    const path = await finish(started);
    expect(path).toEqual(['ScanObject', 'RecordScanError', 'TagVerdict', 'RouteByVerdict', 'NotifyResult']);
    const tags = tagMap(await tagsOf(staging, started.key, started.versionId));
    expect(tags['scan-result']).toBe('Error');
    expect(tags['scan-reason']).toBe('States.Timeout');
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({ verdict: 'Error', failure: { Error: 'States.Timeout' } });
    // A timeout is final: no second message was queued beside the first (which a worker drops unread).
    await job(started);
    await expect(
      takeScanJob(pipeline.clients.sqs, pipeline.layout.queues.scanJobs, started.executionArn, 3_000),
    ).rejects.toThrow(/no scan job/);
  }, 60_000);

  it('reports an upload deleted before its scan as Unscannable deleted, in one notification', async () => {
    const { started, scanJob } = await startThenDelete('gone/during-scan.txt', 'version');
    await failWith(pipeline.clients.sfn, scanJob, 'ObjectNotFoundError');

    const path = await finish(started);
    expect(path).toEqual(['ScanObject', 'RecordDeletedBeforeScan', 'NotifyResult']);
    expect(await exists(destination, started.key)).toBe(false);
    const result = await notificationFor(started.executionArn);
    expect(result.attributes.verdict).toBe('Unscannable');
    expect(result.notification).toMatchObject({
      object: { key: started.key, versionId: started.versionId },
      verdict: 'Unscannable',
      scan: { reason: 'deleted' },
      placement: { area: 'gone' },
    });
  }, 60_000);

  it("reports the scan's verdict when the version is deleted after the scan but before tagging", async () => {
    const { started, scanJob } = await startThenDelete('gone/after-scan.txt', 'version');
    await completeWithVerdict(pipeline.clients, scanJob, { verdict: 'Infected', signature: 'Eicar-Signature' });

    const path = await finish(started);
    expect(path).toEqual([
      'ScanObject',
      'TagVerdict',
      'ClassifyTaggingFailure',
      'RecordDeletedAfterScan',
      'NotifyResult',
    ]);
    expect(await exists(quarantine, started.key)).toBe(false);
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({
      verdict: 'Infected',
      scan: { signature: 'Eicar-Signature' },
      placement: { area: 'gone' },
    });
  }, 60_000);

  it('does not publish a Clean version whose key was deleted (delete marker) during the scan, and says so', async () => {
    // The scanned version survives behind the delete marker; it is not the key's current version any more.
    const { started, scanJob } = await startThenDelete('gone/delete-marker.txt', 'marker');
    await completeWithVerdict(pipeline.clients, scanJob, { verdict: 'Clean' });

    const path = await finish(started);
    expect(path).toEqual(SUPERSEDED_PATH);
    expect(await exists(destination, started.key)).toBe(false);
    expect(await exists(staging, started.key, started.versionId)).toBe(false);
    const result = await notificationFor(started.executionArn);
    expect(result.notification).toMatchObject({
      verdict: 'Clean',
      placement: { area: 'superseded' },
      scan: { promotion: { decision: 'superseded', reason: 'deleted-in-staging' } },
    });
  }, 60_000);

  it('never publishes an older version over a newer one, whatever order their scans finish in', async () => {
    const key = 'order/report.txt';
    const older = await uploadAndStart(key, 'version one');
    const olderJob = await job(older);
    // Upload times have one-second precision: the second upload must land in a later second to be "newer".
    await nextSecond();
    const newer = await uploadAndStart(key, 'version two');
    const newerJob = await job(newer);

    // The newer scan finishes first and is promoted onto the empty key.
    await completeWithVerdict(pipeline.clients, newerJob, { verdict: 'Clean' });
    expect(await finish(newer)).toEqual(PROMOTED_PATH);
    // The older one finishes later. Removing the newer version made it staging's current version again,
    // so only the destination's own record (scan-uploaded) can tell that it is older.
    await completeWithVerdict(pipeline.clients, olderJob, { verdict: 'Clean' });
    expect(await finish(older)).toEqual(SUPERSEDED_PATH);
    expect(await bodyOf(destination, key)).toBe('version two');
    expect((await notificationFor(older.executionArn)).notification).toMatchObject({
      placement: { area: 'superseded' },
      scan: { promotion: { decision: 'superseded', reason: 'newer-promotion-in-destination' } },
    });
    expect(await exists(staging, key, older.versionId)).toBe(false);
  }, 60_000);

  it('promotes a newer upload over the older promotion, and a superseded version never reaches the destination', async () => {
    const key = 'order/update.txt';
    const first = await uploadAndStart(key, 'first');
    await completeWithVerdict(pipeline.clients, await job(first), { verdict: 'Clean' });
    await finish(first);
    expect(await bodyOf(destination, key)).toBe('first');

    await nextSecond();
    const second = await uploadAndStart(key, 'second');
    const secondJob = await job(second);
    // A third upload lands while the second is being scanned: the second is no longer current.
    await nextSecond();
    const third = await uploadAndStart(key, 'third');
    await completeWithVerdict(pipeline.clients, secondJob, { verdict: 'Clean' });
    expect(await finish(second)).toContain('RemoveSupersededVersion');
    expect(await bodyOf(destination, key)).toBe('first');
    expect((await notificationFor(second.executionArn)).notification.scan).toMatchObject({
      promotion: { decision: 'superseded', reason: 'newer-upload-in-staging' },
    });

    await completeWithVerdict(pipeline.clients, await job(third), { verdict: 'Clean' });
    expect(await finish(third)).toEqual([
      'ScanObject',
      'TagVerdict',
      'RouteByVerdict',
      'PromoteOverOlderPromotion',
      'RemoveFromStaging',
      'NotifyResult',
    ]);
    expect(await bodyOf(destination, key)).toBe('third');
  }, 60_000);

  it('replaces a destination copy whose scan-uploaded the pipeline did not write, instead of deferring to it', async () => {
    const key = 'foreign/pinned.txt';
    // Someone who could write the destination (an imported bucket whose owner did not merge the policy).
    await pipeline.clients.s3.send(
      new PutObjectCommand({
        Bucket: destination,
        Key: key,
        Body: 'foreign',
        Tagging: tagging([{ Key: 'scan-uploaded', Value: '9999-12-31T23:59:59.000Z' }]),
      }),
    );
    const started = await uploadAndStart(key, 'fresh clean upload');
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Clean' });
    expect(await finish(started)).toContain('PromoteOverOlderPromotion');
    expect(await bodyOf(destination, key)).toBe('fresh clean upload');
  }, 60_000);

  it('still notifies when the input lacks the newer optional fields (a start-scan one deploy behind)', async () => {
    const key = 'compat/old-input.txt';
    await upload(key, 'old input');
    const head = await pipeline.clients.s3.send(new HeadObjectCommand({ Bucket: staging, Key: key }));
    const identity = { bucket: staging, key, versionId: head.VersionId ?? 'null', etag: head.ETag ?? '', size: 9 };
    const input = buildScanExecutionInput(identity, [], { timing: config.timing, copySourceEncoding: 'raw' });
    const { droppedTags: _dropped, verdictTagRoom: _room, ...object } = input.object;
    const name = `${executionNameFor(identity)}`.slice(0, 76).concat('-old');
    await pipeline.clients.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: pipeline.layout.stateMachineArn,
        name,
        input: JSON.stringify({ ...input, object }),
      }),
    );
    const started = {
      executionArn: `${pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`,
      key,
      versionId: identity.versionId,
    };
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Unscannable', reason: 'encrypted' });
    expect(await finish(started)).toEqual(['ScanObject', 'TagVerdict', 'RouteByVerdict', 'NotifyResult']);
    expect((await notificationFor(started.executionArn)).notification.verdict).toBe('Unscannable');
  }, 60_000);

  it('starts one execution for an event delivered three times, and none for a late redelivery', async () => {
    const key = 'dup/once.txt';
    await upload(key, 'same');
    const announced = { bucket: staging, keyCandidates: [key] };
    const deps = { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config };
    // While the execution runs, StartExecution with the same name and input is idempotent (it succeeds).
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await startScan(announced, deps));
    const names = new Set(
      outcomes.map((o) => (o.outcome === 'started' || o.outcome === 'duplicate' ? o.executionName : '')),
    );
    expect(names.size).toBe(1);
    const [name] = [...names];
    const matching = (await listExecutionArns(pipeline.clients, pipeline.layout.stateMachineArn)).filter((arn) =>
      arn.endsWith(`:${name}`),
    );
    expect(matching).toHaveLength(1);
    const started = { executionArn: matching[0] ?? '', key, versionId: '' };
    // Unscannable keeps the object in staging, so a late redelivery still finds the same version.
    await completeWithVerdict(pipeline.clients, await job(started), {
      verdict: 'Unscannable',
      reason: 'encrypted',
    });
    await finish(started);

    // After the execution ended the name stays taken: ExecutionAlreadyExists, reported as a duplicate.
    const late = await startScan(announced, deps);
    expect(late).toMatchObject({ outcome: 'duplicate', executionName: name });
    const afterLate = (await listExecutionArns(pipeline.clients, pipeline.layout.stateMachineArn)).filter((arn) =>
      arn.endsWith(`:${name}`),
    );
    expect(afterLate).toHaveLength(1);
  }, 60_000);

  it('quarantines an Infected object whatever its owner tags: the verdict always fits, the result is whole', async () => {
    const seven = Array.from({ length: 7 }, (_, i) => ({ Key: `t${i}`, Value: `v${i}` }));
    const started = await uploadAndStart('tags/seven.com', 'X5O!P%@AP', seven);
    await completeWithVerdict(pipeline.clients, await job(started), {
      verdict: 'Infected',
      signature: 'Eicar-Signature',
    });

    const path = await finish(started);
    expect(path).toContain('QuarantineObject');
    const tags = await tagsOf(quarantine, started.key);
    expect(tags).toHaveLength(10);
    expect(tags.slice(0, 7)).toEqual(seven);
    expect(tagMap(tags)).toMatchObject({ 'scan-result': 'Infected', 'scan-signature': 'Eicar-Signature' });
    const result = await notificationFor(started.executionArn);
    // The notification carries what did not fit on the object.
    expect(result.notification.scan).toMatchObject({
      verdict: 'Infected',
      signature: 'Eicar-Signature',
      databaseVersion: 'scripted',
    });
    expect(result.notification.placement).toEqual({ area: 'quarantine', bucket: quarantine });
  }, 60_000);

  it('promotes a Clean object with ten owner tags: eight stay, two are dropped and reported', async () => {
    const tenTags = Array.from({ length: 10 }, (_, i) => ({ Key: `t${i}`, Value: `v${i}` }));
    const started = await uploadAndStart('tags/full.txt', 'full', tenTags);
    await completeWithVerdict(pipeline.clients, await job(started), { verdict: 'Clean' });

    const path = await finish(started);
    expect(path).toContain('PromoteObject');
    expect(await exists(staging, started.key, started.versionId)).toBe(false);
    const tags = await tagsOf(destination, started.key);
    expect(tags.slice(0, 8)).toEqual(tenTags.slice(0, 8));
    expect(tags.slice(8).map((t) => t.Key)).toEqual(['scan-result', 'scan-uploaded']);
    const result = await notificationFor(started.executionArn);
    expect(result.notification.object.droppedTags).toEqual(tenTags.slice(8));
    expect(result.notification.placement).toEqual({ area: 'destination', bucket: destination });
  }, 60_000);

  it.each([
    'with spaces/quarterly report.pdf',
    'plus+sign/a+b=c.txt',
    'percent/100% sure %41.txt',
    'unicode/naïve résumé — 履歴書.txt',
  ])(
    'carries the key %j from the S3 event to the destination unchanged',
    async (key) => {
      await upload(key, `body of ${key}`);
      // The real event path: S3 → EventBridge → scan-requests, parsed as start-scan parses it.
      let announcedKeys: readonly string[] = [];
      await waitFor(
        `the scan request for ${key}`,
        async () => {
          const received = await pipeline.clients.sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: pipeline.layout.queues.scanRequests,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 1,
            }),
          );
          for (const message of received.Messages ?? []) {
            await pipeline.clients.sqs.send(
              new DeleteMessageCommand({
                QueueUrl: pipeline.layout.queues.scanRequests,
                ReceiptHandle: message.ReceiptHandle,
              }),
            );
            const parsed = parseScanRequest(message.Body ?? '');
            if (parsed.kind !== 'objects') continue;
            const mine = parsed.objects.find((o) => o.keyCandidates.includes(key));
            if (mine) announcedKeys = mine.keyCandidates;
          }
          return announcedKeys.length > 0;
        },
        15_000,
      );
      const outcome = await startScan(
        { bucket: staging, keyCandidates: announcedKeys },
        { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config },
      );
      if (outcome.outcome !== 'started') throw new Error(`expected started, got ${outcome.outcome}`);
      expect(outcome.identity.key).toBe(key);
      const started = {
        executionArn: `${pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:')}:${outcome.executionName}`,
        key,
        versionId: outcome.identity.versionId ?? '',
      };
      const scanJob = await job(started);
      expect(scanJob.object.key).toBe(key);
      await completeWithVerdict(pipeline.clients, scanJob, { verdict: 'Clean' });
      await finish(started);
      const promoted = await pipeline.clients.s3.send(new GetObjectCommand({ Bucket: destination, Key: key }));
      expect(await promoted.Body?.transformToString()).toBe(`body of ${key}`);
    },
    60_000,
  );

  it('skips excluded keys without starting an execution', async () => {
    await upload('ignored/file.txt', 'x');
    const outcome = await startScan(
      { bucket: staging, keyCandidates: ['ignored/file.txt'] },
      { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config },
    );
    expect(outcome).toMatchObject({ outcome: 'skipped' });
  });
});
