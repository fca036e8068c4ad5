import { describe, expect, it } from '@jest/globals';
import { compareUploadOrder, formatUploadOrder, parseUploadOrder } from '../../functions/commons/upload-order.js';
import {
  GUARANTEED_VERDICT_TAGS,
  isScanTagKey,
  MAX_OWNER_TAGS,
  MAX_VERDICT_TAGS,
  planOwnerTags,
  S3_MAX_TAGS_PER_OBJECT,
  type Verdict,
  verdictTags,
} from '../../functions/commons/verdict.js';
import { decidePromotion } from '../../scanner-image/src/promotion.js';

const context = {
  scannedAt: '2026-11-25T10:00:00.000Z',
  databaseVersion: '27471',
  uploadedAt: '2026-11-25T09:59:58.000Z',
};
const keys = (verdict: Verdict, room?: number) => verdictTags(verdict, context, room).map((tag) => tag.Key);

describe('verdictTags', () => {
  it('writes only tags with a value, most important first', () => {
    expect(keys({ verdict: 'Clean' })).toEqual(['scan-result', 'scan-uploaded', 'scan-time', 'scan-database']);
    expect(keys({ verdict: 'Infected', signature: 'Eicar' })).toEqual([
      'scan-result',
      'scan-signature',
      'scan-time',
      'scan-database',
      'scan-uploaded',
    ]);
    expect(keys({ verdict: 'Unscannable', reason: 'encrypted' })).toEqual([
      'scan-result',
      'scan-reason',
      'scan-time',
      'scan-database',
    ]);
    expect(keys({ verdict: 'Error', reason: 'States.Timeout' })).toEqual([
      'scan-result',
      'scan-reason',
      'scan-time',
      'scan-database',
    ]);
  });

  it('keeps the two that decide what happens however little room is left', () => {
    expect(keys({ verdict: 'Clean' }, 0)).toEqual(['scan-result', 'scan-uploaded']);
    expect(keys({ verdict: 'Infected', signature: 'Eicar' }, 2)).toEqual(['scan-result', 'scan-signature']);
    expect(keys({ verdict: 'Unscannable', reason: 'too-large' }, 3)).toEqual([
      'scan-result',
      'scan-reason',
      'scan-time',
    ]);
    expect(keys({ verdict: 'Infected', signature: 'Eicar' }, 99)).toHaveLength(MAX_VERDICT_TAGS);
  });
});

describe('planOwnerTags', () => {
  it('treats every case variant of scan- as the pipeline’s own', () => {
    // Including look-alikes a case-insensitive or NFKC-normalising reader equates with `s`: ſ (U+017F), ｓ (U+FF53).
    for (const key of ['scan-result', 'Scan-Result', 'SCAN-x', 'sCaN-', '\u017Fcan-result', '\uFF53can-result']) {
      expect(isScanTagKey(key)).toBe(true);
    }
    for (const key of ['scanner', 'scan', 'my-scan-result', 'scan_result']) expect(isScanTagKey(key)).toBe(false);
  });

  it('never leaves fewer than the guaranteed verdict tags, for any owner tag count', () => {
    for (let count = 0; count <= S3_MAX_TAGS_PER_OBJECT; count++) {
      const owner = Array.from({ length: count }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      const plan = planOwnerTags([{ Key: 'Scan-Result', Value: 'Clean' }, ...owner]);
      expect(plan.discardedScanTags).toEqual([{ Key: 'Scan-Result', Value: 'Clean' }]);
      expect(plan.ownerTags).toEqual(owner.slice(0, MAX_OWNER_TAGS));
      expect(plan.verdictTagRoom).toBeGreaterThanOrEqual(GUARANTEED_VERDICT_TAGS);
      expect(plan.ownerTags.length + plan.verdictTagRoom).toBeLessThanOrEqual(S3_MAX_TAGS_PER_OBJECT);
      // Every verdict fits in what is left.
      for (const verdict of [
        { verdict: 'Clean' },
        { verdict: 'Infected', signature: 's' },
        { verdict: 'Unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip' },
        { verdict: 'Error', reason: 'x' },
      ] as const) {
        expect(plan.ownerTags.length + verdictTags(verdict, context, plan.verdictTagRoom).length).toBeLessThanOrEqual(
          S3_MAX_TAGS_PER_OBJECT,
        );
      }
    }
  });
});

describe('decidePromotion', () => {
  const mine = '2026-11-25T09:59:58.000Z';
  it('promotes onto an empty key, and over an older or same-second promotion conditional on its ETag', () => {
    expect(decidePromotion(mine, 'v2', { stagingCurrentVersionId: 'v2', destination: undefined })).toEqual({
      decision: 'promote-new',
    });
    for (const theirs of ['2026-11-25T09:59:57.000Z', mine, undefined]) {
      expect(
        decidePromotion(mine, 'v2', {
          stagingCurrentVersionId: 'v2',
          destination: { etag: '"d1"', uploadedAt: theirs },
        }),
      ).toEqual({ decision: 'promote-over', destinationEtag: '"d1"' });
    }
  });

  it('never replaces a promotion of a later upload', () => {
    expect(
      decidePromotion(mine, 'v1', {
        stagingCurrentVersionId: 'v1',
        destination: { etag: '"d2"', uploadedAt: '2026-11-25T09:59:59.000Z' },
      }),
    ).toEqual({ decision: 'superseded', reason: 'newer-promotion-in-destination' });
  });

  it('does not trust a scan-uploaded the pipeline could not have written (not its format, or in the future)', () => {
    const now = new Date('2026-11-25T10:00:00.000Z');
    // Later than now by more than any clock skew (15 min): not a time S3 gave.
    for (const forged of ['9999-12-31T23:59:59.000Z', 'zzz', '2026-11-25', '2026-11-25T10:15:00.001Z']) {
      expect(
        decidePromotion(
          mine,
          'v2',
          { stagingCurrentVersionId: 'v2', destination: { etag: '"f"', uploadedAt: forged } },
          now,
        ),
      ).toEqual({ decision: 'promote-over', destinationEtag: '"f"' });
    }
  });

  it('trusts a promotion made moments ago by an S3 clock a little ahead of the worker’s', () => {
    const now = new Date('2026-11-25T10:00:00.000Z');
    const justPromoted = { etag: '"d2"', uploadedAt: '2026-11-25T10:00:02.000Z' };
    expect(decidePromotion(mine, 'v1', { stagingCurrentVersionId: 'v1', destination: justPromoted }, now)).toEqual({
      decision: 'superseded',
      reason: 'newer-promotion-in-destination',
    });
  });

  it('makes no decision for an object without a version id: it stays in staging', () => {
    expect(
      decidePromotion(mine, 'null', { stagingCurrentVersionId: undefined, destination: undefined }),
    ).toBeUndefined();
  });

  it('never publishes a version that is not the key’s current one', () => {
    expect(decidePromotion(mine, 'v1', { stagingCurrentVersionId: 'v2', destination: undefined })).toEqual({
      decision: 'superseded',
      reason: 'newer-upload-in-staging',
    });
    expect(decidePromotion(mine, 'v1', { stagingCurrentVersionId: undefined, destination: undefined })).toEqual({
      decision: 'superseded',
      reason: 'deleted-in-staging',
    });
  });
});

describe('upload order (scan-uploaded)', () => {
  const now = new Date('2026-11-25T10:00:00.000Z');
  const order = (value: string) => {
    const parsed = parseUploadOrder(value, now);
    if (!parsed) throw new Error(`not an upload order: ${value}`);
    return parsed;
  };
  it('writes the sequencer beside the time only when an S3 event gave one', () => {
    expect(formatUploadOrder({ uploadedAt: '2026-11-25T09:00:00.000Z' })).toBe('2026-11-25T09:00:00.000Z');
    expect(formatUploadOrder({ uploadedAt: '2026-11-25T09:00:00.000Z', sequencer: '0055AED6DCD90281E5' })).toBe(
      '2026-11-25T09:00:00.000Z/0055AED6DCD90281E5',
    );
    expect(formatUploadOrder({})).toBeUndefined();
  });

  it('orders two uploads in one second by their sequencers, as hexadecimal numbers', () => {
    const earlier = order('2026-11-25T09:00:00.000Z/0055AED6DCD90281E5');
    const later = order('2026-11-25T09:00:00.000Z/0055AED6DCD90281F0');
    expect(compareUploadOrder(later, earlier)).toBeGreaterThan(0);
    expect(compareUploadOrder(earlier, later)).toBeLessThan(0);
    // A longer sequencer is a larger number, not a later string.
    expect(compareUploadOrder(order('2026-11-25T09:00:00.000Z/1000'), order('2026-11-25T09:00:00.000Z/FFF'))).toBe(1);
    // Time first: a later second wins whatever the sequencers say.
    expect(compareUploadOrder(order('2026-11-25T09:00:01.000Z/01'), earlier)).toBe(1);
    // Without a sequencer on one side, one second cannot be split.
    expect(compareUploadOrder(order('2026-11-25T09:00:00.000Z'), later)).toBe(0);
  });

  it('supersedes a same-second older upload whose scan finished last', () => {
    const view = {
      stagingCurrentVersionId: 'v1',
      destination: { etag: '"d2"', uploadedAt: '2026-11-25T09:00:00.000Z/0055AED6DCD90281F0' },
    };
    expect(decidePromotion('2026-11-25T09:00:00.000Z/0055AED6DCD90281E5', 'v1', view, now)).toEqual({
      decision: 'superseded',
      reason: 'newer-promotion-in-destination',
    });
  });

  it('refuses values the pipeline could not have written', () => {
    for (const value of [
      '2026-11-25T09:00:00.000Z/xyz',
      '2026-11-25T09:00:00.000Z/01/02',
      '2026-11-25T10:15:00.001Z',
    ]) {
      expect(parseUploadOrder(value, now)).toBeUndefined();
    }
  });
});
