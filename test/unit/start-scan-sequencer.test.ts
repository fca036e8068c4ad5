import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { parseScanRequest } from '../../functions/start-scan/object-events.js';
import { pinObject } from '../../functions/start-scan/start-scan.js';

const s3 = mockClient(S3Client);

function announced(object: Record<string, unknown>) {
  const parsed = parseScanRequest(
    JSON.stringify({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      time: '2026-11-25T09:00:00Z',
      detail: { bucket: { name: 'staging' }, object: { key: 'a.txt', size: 3, etag: 'e1', ...object } },
    }),
  );
  if (parsed.kind !== 'objects' || !parsed.objects[0]) throw new Error('no object announced');
  return parsed.objects[0];
}

beforeEach(() => {
  s3.reset();
});

describe("the event's sequencer, which orders uploads of one key within a second", () => {
  it('is pinned with the version it describes', async () => {
    s3.on(HeadObjectCommand).resolves({ ETag: '"e1"', VersionId: 'v1', ContentLength: 3, LastModified: new Date() });
    const pinned = await pinObject(
      new S3Client({ region: 'eu-west-1' }),
      announced({ 'version-id': 'v1', sequencer: '0055aed6dcd90281e5' }),
    );
    expect(pinned.identity.sequencer).toBe('0055AED6DCD90281E5');
  });

  it('is left out when HeadObject pinned another version than the event named (or the event named none)', async () => {
    s3.on(HeadObjectCommand).resolves({ ETag: '"e2"', VersionId: 'v2', ContentLength: 3, LastModified: new Date() });
    const noVersion = await pinObject(
      new S3Client({ region: 'eu-west-1' }),
      announced({ sequencer: '0055AED6DCD90281E5' }),
    );
    expect(noVersion.identity.sequencer).toBeUndefined();
  });

  it('is ignored when it is not hexadecimal', () => {
    expect(announced({ 'version-id': 'v1', sequencer: 'not-hex' }).sequencer).toBeUndefined();
  });
});
