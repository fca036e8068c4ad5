import { describe, expect, it } from '@jest/globals';
import { rescanSkipReason } from '../../functions/commons/rescan.js';
import { parseScanRequest, UnrecognisedEventError } from '../../functions/start-scan/object-events.js';

const generation = { trigger: 'retro', id: 'run-1' } as const;

describe('scanflow scan requests', () => {
  it('parses one object with its version and generation, keys taken as given (no URL decoding)', () => {
    const parsed = parseScanRequest(
      JSON.stringify({ scanflow: 'scan-request', bucket: 'clean', key: 'a+b%20c.txt', versionId: 'v9', generation }),
    );
    expect(parsed).toEqual({
      kind: 'objects',
      objects: [{ bucket: 'clean', keyCandidates: ['a+b%20c.txt'], versionId: 'v9', generation }],
    });
  });

  it("parses a retro batch of ListObjectsV2 items with the run filter, ignoring the items' other fields", () => {
    const parsed = parseScanRequest(
      JSON.stringify({
        scanflow: 'scan-request',
        bucket: 'staging',
        generation,
        filter: { verdicts: ['Error', 'Unscannable'] },
        items: [
          { Key: 'p/1', ETag: '"x"', Size: 3 },
          { Key: 'p/2', ETag: '"y"', Size: 4 },
        ],
      }),
    );
    expect(parsed.kind === 'objects' ? parsed.objects : []).toEqual([
      { bucket: 'staging', keyCandidates: ['p/1'], generation, filter: { verdicts: ['Error', 'Unscannable'] } },
      { bucket: 'staging', keyCandidates: ['p/2'], generation, filter: { verdicts: ['Error', 'Unscannable'] } },
    ]);
  });

  it.each([
    ['the upload generation', { bucket: 'b12', key: 'k', generation: { trigger: 'upload' } }],
    ['no generation', { bucket: 'b12', key: 'k' }],
    ['a bad generation id', { bucket: 'b12', key: 'k', generation: { trigger: 'on-demand', id: 'a b' } }],
    ['both key and items', { bucket: 'b12', key: 'k', items: [{ Key: 'k' }], generation }],
    ['neither key nor items', { bucket: 'b12', generation }],
    ['a version for items', { bucket: 'b12', items: [{ Key: 'k' }], versionId: 'v', generation }],
    ['an unknown filter', { bucket: 'b12', key: 'k', generation, filter: { newest: true } }],
  ])('refuses a request with %s', (_what, fields) => {
    expect(() => parseScanRequest(JSON.stringify({ scanflow: 'scan-request', ...fields }))).toThrow(
      UnrecognisedEventError,
    );
  });
});

describe('rescanSkipReason', () => {
  const tags = (result?: string, database?: string) => [
    { Key: 'owner', Value: 'me' },
    ...(result ? [{ Key: 'scan-result', Value: result }] : []),
    ...(database ? [{ Key: 'scan-database', Value: database }] : []),
  ];

  it('selects everything without a filter', () => {
    expect(rescanSkipReason(undefined, tags('Clean', '27000'))).toBeUndefined();
  });

  it('only-unscanned selects objects without scan-result', () => {
    expect(rescanSkipReason({ onlyUnscanned: true }, tags())).toBeUndefined();
    expect(rescanSkipReason({ onlyUnscanned: true }, tags('Error'))).toMatch(/already scanned/);
  });

  it('a verdict list selects exactly those verdicts', () => {
    const filter = { verdicts: ['Error', 'Unscannable'] } as const;
    expect(rescanSkipReason({ verdicts: [...filter.verdicts] }, tags('Error'))).toBeUndefined();
    expect(rescanSkipReason({ verdicts: [...filter.verdicts] }, tags('Unscannable'))).toBeUndefined();
    expect(rescanSkipReason({ verdicts: [...filter.verdicts] }, tags('Clean'))).toBeDefined();
    expect(rescanSkipReason({ verdicts: [...filter.verdicts] }, tags())).toBeDefined();
  });

  it('older-than-db selects older databases and, when in doubt, rescans', () => {
    const filter = { olderThanDb: 27500 };
    expect(rescanSkipReason(filter, tags('Clean', '27499'))).toBeUndefined();
    expect(rescanSkipReason(filter, tags('Clean', '27500'))).toBeDefined();
    expect(rescanSkipReason(filter, tags('Clean', '27501'))).toBeDefined();
    expect(rescanSkipReason(filter, tags('Clean'))).toBeUndefined();
    expect(rescanSkipReason(filter, tags('Clean', 'unknown'))).toBeUndefined();
    expect(rescanSkipReason(filter, tags())).toBeUndefined();
  });
});
