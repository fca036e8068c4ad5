import { GetObjectTaggingCommand, ListObjectVersionsCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { STATUS_EXIT_CODES } from '../../../cli/commands/status.js';
import { executionArnFor } from '../../../cli/executions.js';
import { EXIT } from '../../../cli/exit-codes.js';
import {
  defaultSearchSince,
  executionNamePatternFor,
  findExecutionsOfKey,
  type KeyExecution,
  listVersionsOfKey,
  locateInBucket,
  MAX_VERSIONS_SHOWN,
  type ObjectLocation,
  type StatusFacts,
  summarizeStatus,
  type VersionInfo,
} from '../../../cli/object-status.js';
import { executionNameFor } from '../../../functions/commons/scan-execution.js';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:scan-object';
const at = (minute: number) => new Date(Date.UTC(2025, 5, 10, 12, minute));

describe('execution names of a key', () => {
  it.each([
    'docs/q1 report.pdf',
    'a/b/Résumé final (2).docx',
    'uploads/2025/06/photo.JPG',
    '!!!', // nothing to make a slug of: the name is the hash alone
    'folder/',
  ])('every upload of %j gets a name the pattern matches', (key) => {
    const pattern = executionNamePatternFor(key);
    for (const versionId of ['v1', 'v2', undefined]) {
      expect(executionNameFor({ bucket: 'staging', key, versionId, etag: `"${versionId}"` })).toMatch(pattern);
    }
  });

  it('does not match uploads of keys with another last segment', () => {
    const pattern = executionNamePatternFor('docs/q1 report.pdf');
    expect(executionNameFor({ bucket: 'staging', key: 'docs/q1 report.pdf.bak', etag: '"e"' })).not.toMatch(pattern);
    expect(executionNameFor({ bucket: 'staging', key: 'docs/report.pdf', etag: '"e"' })).not.toMatch(pattern);
    expect(executionNameFor({ bucket: 'staging', key: '!!!', etag: '"e"' })).not.toMatch(pattern);
  });
});

describe('the versions of exactly one key', () => {
  const s3 = mockClient(S3Client);
  beforeEach(() => {
    s3.reset();
  });

  it('pages through the key’s versions and delete markers, and stops at the first longer key it prefixes', async () => {
    s3.on(ListObjectVersionsCommand, { KeyMarker: undefined })
      .resolves({
        IsTruncated: true,
        NextKeyMarker: 'a.txt',
        NextVersionIdMarker: 'v2',
        Versions: [
          { Key: 'a.txt', VersionId: 'v3', IsLatest: false, LastModified: at(3), Size: 3, ETag: '"e3"' },
          { Key: 'a.txt', VersionId: 'v2', IsLatest: false, LastModified: at(2), Size: 2, ETag: '"e2"' },
        ],
        DeleteMarkers: [{ Key: 'a.txt', VersionId: 'd4', IsLatest: true, LastModified: at(4) }],
      })
      .on(ListObjectVersionsCommand, { KeyMarker: 'a.txt', VersionIdMarker: 'v2' })
      .resolves({
        IsTruncated: true,
        NextKeyMarker: 'a.txt.bak',
        NextVersionIdMarker: 'x',
        Versions: [
          { Key: 'a.txt', VersionId: 'v1', IsLatest: false, LastModified: at(1), Size: 1, ETag: '"e1"' },
          { Key: 'a.txt.bak', VersionId: 'x', IsLatest: true, LastModified: at(9), Size: 9, ETag: '"x"' },
        ],
      });
    const versions = await listVersionsOfKey(new S3Client({ region: 'eu-west-1' }), 'staging', 'a.txt');
    expect(versions.map((v) => [v.versionId, v.latest, v.deleteMarker])).toEqual([
      ['d4', true, true],
      ['v3', false, false],
      ['v2', false, false],
      ['v1', false, false],
    ]);
    expect(versions[1]).toEqual({
      versionId: 'v3',
      latest: false,
      deleteMarker: false,
      lastModified: at(3),
      size: 3,
      etag: '"e3"',
    });
    expect(s3.commandCalls(ListObjectVersionsCommand)).toHaveLength(2);
    expect(s3.commandCalls(ListObjectVersionsCommand)[0]?.args[0].input).toMatchObject({
      Bucket: 'staging',
      Prefix: 'a.txt',
    });
  });
});

describe('one bucket’s versions with their verdict tags', () => {
  const s3 = mockClient(S3Client);
  beforeEach(() => {
    s3.reset();
  });

  it('a version whose tags may not be read is listed as such; the others keep their tags', async () => {
    s3.on(ListObjectVersionsCommand).resolves({
      Versions: [
        { Key: 'k', VersionId: 'v2', IsLatest: true, LastModified: at(2), Size: 2, ETag: '"e2"' },
        { Key: 'k', VersionId: 'v1', IsLatest: false, LastModified: at(1), Size: 1, ETag: '"e1"' },
      ],
    });
    s3.on(GetObjectTaggingCommand, { VersionId: 'v2' })
      .rejects(
        new S3ServiceException({
          name: 'AccessDenied',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
          message: 'Access Denied',
        }),
      )
      .on(GetObjectTaggingCommand, { VersionId: 'v1' })
      .resolves({
        TagSet: [
          { Key: 'scan-result', Value: 'Infected' },
          { Key: 'owner', Value: 'team-a' },
        ],
      });
    const location = await locateInBucket(
      new S3Client({ region: 'eu-west-1' }),
      { area: 'quarantine', bucket: 'q' },
      'k',
    );
    expect(location.versions.map((v) => [v.versionId, v.tagsUnreadable, v.verdictTags])).toEqual([
      ['v2', 'AccessDenied', undefined],
      // Only the pipeline's tags: the owner's are not the CLI's business.
      ['v1', undefined, { 'scan-result': 'Infected' }],
    ]);
  });

  it('shows the newest versions and the one asked for, and counts the rest', async () => {
    const versions = Array.from({ length: 14 }, (_, i) => ({
      Key: 'k',
      VersionId: `v${i}`,
      IsLatest: i === 13,
      LastModified: at(i),
      ETag: `"e${i}"`,
    }));
    s3.on(ListObjectVersionsCommand).resolves({ Versions: versions });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
    const location = await locateInBucket(
      new S3Client({ region: 'eu-west-1' }),
      { area: 'staging', bucket: 's' },
      'k',
      'v0',
    );
    expect(location.versions.map((v) => v.versionId)).toEqual([
      ...Array.from({ length: MAX_VERSIONS_SHOWN }, (_, i) => `v${13 - i}`),
      'v0',
    ]);
    expect(location.moreVersions).toBe(14 - MAX_VERSIONS_SHOWN - 1);
    expect(s3.commandCalls(GetObjectTaggingCommand)).toHaveLength(MAX_VERSIONS_SHOWN + 1);
  });
});

describe('finding the key’s executions', () => {
  const sfn = mockClient(SFNClient);
  beforeEach(() => {
    sfn.reset();
  });

  const key = 'docs/q1 report.pdf';
  const nameOf = (bucket: string, forKey: string, versionId: string) =>
    executionNameFor({ bucket, key: forKey, versionId, etag: `"${versionId}"` });
  const input = (bucket: string, forKey: string, versionId: string) =>
    JSON.stringify({
      object: { bucket, key: forKey, versionId, etag: `"${versionId}"`, uploadedAt: at(0).toISOString() },
    });

  it('computes the names of staging versions, lists back to `since` for moved ones, keeps only this key’s uploads', async () => {
    const moved = nameOf('staging', key, 'moved'); // promoted: no longer in staging
    const stillThere = nameOf('staging', key, 'blocked'); // Unscannable: still in staging
    const sameSlugOtherFolder = nameOf('staging', 'other/q1 report.pdf', 'o1');
    const otherBucket = nameOf('elsewhere', key, 'e1');
    const tooOld = nameOf('staging', key, 'old');
    const arn = (name: string) => executionArnFor(STATE_MACHINE, name);
    const listed = (name: string, minute: number) => ({
      name,
      executionArn: arn(name),
      stateMachineArn: STATE_MACHINE,
      status: 'SUCCEEDED' as const,
      startDate: at(minute),
    });
    // Newest first, three pages; the third is past `since` and must never be read.
    sfn
      .on(ListExecutionsCommand, { nextToken: undefined })
      .resolves({ executions: [listed('unrelated-abc', 50), listed(sameSlugOtherFolder, 40)], nextToken: 'p2' })
      .on(ListExecutionsCommand, { nextToken: 'p2' })
      .resolves({ executions: [listed(otherBucket, 35), listed(moved, 30), listed(tooOld, 1)], nextToken: 'p3' })
      .on(ListExecutionsCommand, { nextToken: 'p3' })
      .resolves({ executions: [listed(nameOf('staging', key, 'older-still'), 0)] });
    const described: Record<
      string,
      { input: string; status: 'SUCCEEDED' | 'RUNNING'; startDate: Date; output?: string }
    > = {
      [moved]: {
        input: input('staging', key, 'moved'),
        status: 'SUCCEEDED',
        startDate: at(30),
        output: JSON.stringify({ scan: { verdict: 'Clean' }, placement: { area: 'destination', bucket: 'dest' } }),
      },
      [stillThere]: { input: input('staging', key, 'blocked'), status: 'RUNNING', startDate: at(45) },
      [sameSlugOtherFolder]: {
        input: input('staging', 'other/q1 report.pdf', 'o1'),
        status: 'SUCCEEDED',
        startDate: at(40),
      },
      [otherBucket]: { input: input('elsewhere', key, 'e1'), status: 'SUCCEEDED', startDate: at(35) },
    };
    sfn.on(DescribeExecutionCommand).callsFake(({ executionArn }: { executionArn: string }) => {
      const name = executionArn.split(':').pop() ?? '';
      const found = described[name];
      if (!found) throw new ExecutionDoesNotExist({ $metadata: {}, message: 'Execution Does Not Exist' });
      return { executionArn, name, stateMachineArn: STATE_MACHINE, ...found };
    });
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        { id: 1, timestamp: at(0), type: 'ExecutionStarted' },
        { id: 2, timestamp: at(0), type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'ScanObject' } },
        { id: 3, timestamp: at(0), type: 'TaskStateExited', stateExitedEventDetails: { name: 'ScanObject' } },
        { id: 4, timestamp: at(0), type: 'ChoiceStateEntered', stateEnteredEventDetails: { name: 'RouteByVerdict' } },
      ],
    });

    const found = await findExecutionsOfKey(new SFNClient({ region: 'eu-west-1' }), {
      stateMachineArn: STATE_MACHINE,
      key,
      stagingBuckets: ['staging'],
      stagingVersions: [{ bucket: 'staging', versionId: 'blocked', etag: '"blocked"' }],
      since: at(10),
    });

    expect(found.map((e) => [e.name, e.status, e.upload.versionId])).toEqual([
      [stillThere, 'RUNNING', 'blocked'],
      [moved, 'SUCCEEDED', 'moved'],
    ]);
    expect(found[1]).toMatchObject({
      result: { verdict: 'Clean', placement: { area: 'destination', bucket: 'dest' } },
      statePath: ['ScanObject', 'RouteByVerdict'],
    });
    expect(sfn.commandCalls(ListExecutionsCommand).map((call) => call.args[0].input)).toEqual([
      { stateMachineArn: STATE_MACHINE, maxResults: 1000 },
      { stateMachineArn: STATE_MACHINE, maxResults: 1000, nextToken: 'p2' },
    ]);
    // Same slug, described and dropped; the unrelated name and the one before `since` never described.
    const describedNames = sfn
      .commandCalls(DescribeExecutionCommand)
      .map((call) => call.args[0].input.executionArn?.split(':').pop())
      .sort();
    expect(describedNames).toEqual([moved, otherBucket, sameSlugOtherFolder, stillThere].sort());
  });
});

describe('an unversioned staging bucket', () => {
  const sfn = mockClient(SFNClient);
  beforeEach(() => {
    sfn.reset();
  });

  it('finds the execution start-scan named without a version id, for the object listed as version "null"', async () => {
    const name = executionNameFor({ bucket: 'staging', key: 'a.txt', etag: '"e"' });
    sfn.on(ListExecutionsCommand).resolves({ executions: [] });
    sfn.on(DescribeExecutionCommand).callsFake(({ executionArn }: { executionArn: string }) => {
      if (executionArn !== executionArnFor(STATE_MACHINE, name)) {
        throw new ExecutionDoesNotExist({ $metadata: {}, message: 'Execution Does Not Exist' });
      }
      return {
        executionArn,
        name,
        stateMachineArn: STATE_MACHINE,
        status: 'SUCCEEDED',
        startDate: at(1),
        input: JSON.stringify({ object: { bucket: 'staging', key: 'a.txt', versionId: 'null', etag: '"e"' } }),
      };
    });
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [] });
    const found = await findExecutionsOfKey(new SFNClient({ region: 'eu-west-1' }), {
      stateMachineArn: STATE_MACHINE,
      key: 'a.txt',
      stagingBuckets: ['staging'],
      stagingVersions: [{ bucket: 'staging', versionId: 'null', etag: '"e"' }],
      since: at(0),
    });
    expect(found.map((e) => e.name)).toEqual([name]);
  });
});

const version = (versionId: string, minute: number, tags?: Record<string, string>, latest = false): VersionInfo => ({
  versionId,
  latest,
  deleteMarker: false,
  lastModified: at(minute),
  etag: `"${versionId}"`,
  ...(tags ? { verdictTags: tags } : {}),
});

const location = (area: ObjectLocation['area'], versions: VersionInfo[]): ObjectLocation => ({
  area,
  bucket: area,
  versions,
  moreVersions: 0,
});

const execution = (
  versionId: string,
  minute: number,
  status: string,
  result?: KeyExecution['result'],
): KeyExecution => ({
  name: `exec-${versionId}`,
  executionArn: executionArnFor(STATE_MACHINE, `exec-${versionId}`),
  status,
  startDate: at(minute),
  ...(status === 'RUNNING' ? {} : { stopDate: at(minute + 1) }),
  upload: { bucket: 'staging', versionId, uploadedAt: at(minute).toISOString() },
  ...(result ? { result } : {}),
  statePath: [],
});

const facts = (partial: Partial<StatusFacts>): StatusFacts => ({
  named: { area: 'staging', bucket: 'staging' },
  locations: [location('staging', []), location('destination', []), location('quarantine', [])],
  executions: [],
  searchedSince: at(0),
  ...partial,
});

describe('which upload status is about, and its verdict', () => {
  it('the newest upload decides: a newer Infected upload outranks an older Clean one still in destination', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', []),
          location('destination', [version('copy1', 12, { 'scan-result': 'Clean' }, true)]),
          location('quarantine', [version('copy2', 22, { 'scan-result': 'Infected' }, true)]),
        ],
        executions: [
          execution('v2', 20, 'SUCCEEDED', {
            verdict: 'Infected',
            signature: 'Eicar',
            placement: { area: 'quarantine' },
          }),
          execution('v1', 10, 'SUCCEEDED', { verdict: 'Clean', placement: { area: 'destination' } }),
        ],
      }),
    );
    expect(verdict).toMatchObject({
      state: 'Infected',
      signature: 'Eicar',
      versionId: 'v2',
      placement: 'quarantine',
      basis: 'execution',
    });
    expect(STATUS_EXIT_CODES[verdict.state]).toBe(EXIT.notClean);
  });

  it('--version-id of an older upload: that upload’s verdict', () => {
    const verdict = summarizeStatus(
      facts({
        versionId: 'v1',
        executions: [
          execution('v2', 20, 'SUCCEEDED', { verdict: 'Infected', placement: { area: 'quarantine' } }),
          execution('v1', 10, 'SUCCEEDED', { verdict: 'Clean', placement: { area: 'destination' } }),
        ],
      }),
    );
    expect(verdict).toMatchObject({ state: 'Clean', versionId: 'v1', placement: 'destination' });
    expect(STATUS_EXIT_CODES[verdict.state]).toBe(EXIT.ok);
  });

  it('a newer upload still in staging without an execution yet has no verdict, whatever older ones had', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', [version('v2', 30, {}, true)]),
          location('destination', []),
          location('quarantine', []),
        ],
        executions: [execution('v1', 10, 'SUCCEEDED', { verdict: 'Clean', placement: { area: 'destination' } })],
      }),
    );
    expect(verdict).toMatchObject({ state: 'no-verdict', versionId: 'v2', placement: 'staging', basis: 'none' });
    expect(verdict.note).toContain('not scanned yet');
    expect(STATUS_EXIT_CODES[verdict.state]).toBe(EXIT.noVerdict);
  });

  it('a running scan is no verdict yet', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', [version('v1', 10, {}, true)]),
          location('destination', []),
          location('quarantine', []),
        ],
        executions: [execution('v1', 10, 'RUNNING')],
      }),
    );
    expect(verdict).toMatchObject({
      state: 'no-verdict',
      basis: 'execution',
      note: 'its scan is still running (execution exec-v1)',
    });
  });

  it('an execution that failed without a result is an Error: the upload stays blocked', () => {
    const verdict = summarizeStatus(facts({ executions: [execution('v1', 10, 'TIMED_OUT')] }));
    expect(verdict).toMatchObject({ state: 'Error', reason: 'execution TIMED_OUT', placement: 'staging' });
    expect(STATUS_EXIT_CODES[verdict.state]).toBe(EXIT.notClean);
  });

  it('with the executions expired, the tags on the staging version say it', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', [version('v1', 10, { 'scan-result': 'Unscannable', 'scan-reason': 'encrypted' }, true)]),
          location('destination', []),
          location('quarantine', []),
        ],
      }),
    );
    expect(verdict).toMatchObject({ state: 'Unscannable', reason: 'encrypted', placement: 'staging', basis: 'tags' });
  });

  it('with no upload known at all, the newest copy in destination or quarantine says it', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', []),
          location('destination', [version('d1', 5, { 'scan-result': 'Clean' }, true)]),
          location('quarantine', [version('q1', 50, { 'scan-result': 'Infected', 'scan-signature': 'Eicar' }, true)]),
        ],
      }),
    );
    expect(verdict).toMatchObject({
      state: 'Infected',
      signature: 'Eicar',
      versionId: 'q1',
      placement: 'quarantine',
      basis: 'tags',
    });
  });

  it('--version-id of a copy in destination: that copy’s tags', () => {
    const verdict = summarizeStatus(
      facts({
        named: { area: 'destination', bucket: 'destination' },
        versionId: 'd1',
        locations: [
          location('staging', []),
          location('destination', [version('d1', 5, { 'scan-result': 'Clean' }, true)]),
          location('quarantine', []),
        ],
        executions: [execution('v9', 30, 'SUCCEEDED', { verdict: 'Infected', placement: { area: 'quarantine' } })],
      }),
    );
    expect(verdict).toMatchObject({ state: 'Clean', versionId: 'd1', placement: 'destination', basis: 'tags' });
  });

  it('nothing anywhere, or a version id nobody has, is not found', () => {
    expect(summarizeStatus(facts({}))).toMatchObject({ state: 'not-found' });
    expect(summarizeStatus(facts({ versionId: 'nope', executions: [execution('v1', 10, 'RUNNING')] }))).toMatchObject({
      state: 'not-found',
    });
    expect(STATUS_EXIT_CODES['not-found']).toBe(EXIT.notFound);
  });

  it('a verdict only in tags these credentials may not read is unknown, and says so (exit 3)', () => {
    const unreadable: VersionInfo = { ...version('q1', 5, undefined, true), tagsUnreadable: 'AccessDenied' };
    const verdict = summarizeStatus(
      facts({
        locations: [location('staging', []), location('destination', []), location('quarantine', [unreadable])],
      }),
    );
    expect(verdict).toMatchObject({ state: 'unreadable', versionId: 'q1', placement: 'quarantine' });
    expect(verdict.note).toBe('the tags of the current copy in quarantine cannot be read (AccessDenied)');
    expect(STATUS_EXIT_CODES[verdict.state]).toBe(EXIT.unreachable);
  });

  it('a copy without a scan-result tag has no verdict', () => {
    const verdict = summarizeStatus(
      facts({
        locations: [
          location('staging', []),
          location('destination', [version('d1', 5, {}, true)]),
          location('quarantine', []),
        ],
      }),
    );
    expect(verdict).toMatchObject({ state: 'no-verdict', versionId: 'd1' });
  });
});

describe('how far back status lists executions by default', () => {
  it('a day before the oldest copy in destination or quarantine: staging uploads are found by name', () => {
    const locations = [
      location('staging', [version('v3', 40), version('v0', 1)]),
      location('destination', [version('d2', 30), version('d1', 20)]),
      location('quarantine', [
        { versionId: 'dm', latest: true, deleteMarker: true, lastModified: at(25) },
        version('q1', 22),
      ]),
    ];
    expect(defaultSearchSince(locations, at(59)).toISOString()).toBe('2025-06-09T12:20:00.000Z');
  });

  it('a day back when the key has no copy in destination or quarantine', () => {
    const locations = [
      location('staging', [version('v0', 1)]),
      location('destination', []),
      location('quarantine', []),
    ];
    expect(defaultSearchSince(locations, at(30)).toISOString()).toBe('2025-06-09T12:30:00.000Z');
  });
});
