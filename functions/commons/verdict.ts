/**
 * The one verdict type. Tags, the state machine's Choice, bucket policies, metrics and notifications
 * all speak in these four words; nothing else decides whether an object may be read.
 */
export const VERDICT_NAMES = ['Clean', 'Infected', 'Unscannable', 'Error'] as const;
export type VerdictName = (typeof VERDICT_NAMES)[number];

/**
 * Why an object could not be scanned completely. Each one means "not Clean", never "probably fine".
 * `unsupported-format`: a compression or archive format (or zip compression method) ClamAV does not
 * unpack, found by the worker's content gate after clamd answered OK.
 */
export const UNSCANNABLE_REASONS = [
  'too-large',
  'encrypted',
  'limits-exceeded',
  'unsupported-encryption',
  'unsupported-format',
] as const;
export type UnscannableReason = (typeof UNSCANNABLE_REASONS)[number];

export type Verdict =
  | { readonly verdict: 'Clean' }
  | { readonly verdict: 'Infected'; readonly signature: string }
  | { readonly verdict: 'Unscannable'; readonly reason: UnscannableReason; readonly signature?: string }
  | { readonly verdict: 'Error'; readonly reason: string };

export interface S3Tag {
  readonly Key: string;
  readonly Value: string;
}

/**
 * Our tag keys. S3 allows 10 tags per object, so we always write exactly these four (empty values where
 * they do not apply) and leave six for the object's owner. A constant count lets start-scan tell up front
 * whether the verdict will fit.
 */
export const TAG_KEYS = {
  result: 'scan-result',
  reason: 'scan-reason',
  signature: 'scan-signature',
  time: 'scan-time',
} as const;
export const SCAN_TAG_PREFIX = 'scan-';
export const VERDICT_TAG_COUNT = Object.keys(TAG_KEYS).length;
export const S3_MAX_TAGS_PER_OBJECT = 10;

export function isScanTagKey(key: string): boolean {
  return key.startsWith(SCAN_TAG_PREFIX);
}

export function reasonOf(verdict: Verdict): string {
  return verdict.verdict === 'Unscannable' || verdict.verdict === 'Error' ? verdict.reason : '';
}

export function signatureOf(verdict: Verdict): string {
  if (verdict.verdict === 'Infected') return verdict.signature;
  if (verdict.verdict === 'Unscannable') return verdict.signature ?? '';
  return '';
}

/**
 * The verdict as S3 tags. The state machine's error path writes the same four keys in ASL
 * (statemachines/scan-object.asl.json, RecordScanError); the statemachine tests hold both to this shape.
 */
export function verdictTags(verdict: Verdict, scannedAt: string): S3Tag[] {
  return [
    { Key: TAG_KEYS.result, Value: verdict.verdict },
    { Key: TAG_KEYS.reason, Value: reasonOf(verdict) },
    { Key: TAG_KEYS.signature, Value: sanitizeTagValue(signatureOf(verdict)) },
    { Key: TAG_KEYS.time, Value: scannedAt },
  ];
}

/**
 * S3 tag values allow letters, digits, spaces and `+ - = . _ : / @`, up to 256 characters. ClamAV
 * signature names are almost always inside that set; anything else becomes `_` rather than failing the tag.
 */
export function sanitizeTagValue(value: string): string {
  return value.replace(/[^\p{L}\p{N} +\-=._:/@]/gu, '_').slice(0, 256);
}

export interface UserTagPlan {
  /** The owner's own tags, with any `scan-*` tags removed: only the pipeline writes those. */
  readonly userTags: S3Tag[];
  /** False when the owner's tags leave no room for our four: the execution ends as Error `tag-limit`. */
  readonly hasRoomForVerdictTags: boolean;
}

export function planUserTags(existing: readonly S3Tag[]): UserTagPlan {
  const userTags = existing.filter((tag) => !isScanTagKey(tag.Key));
  return {
    userTags,
    hasRoomForVerdictTags: userTags.length + VERDICT_TAG_COUNT <= S3_MAX_TAGS_PER_OBJECT,
  };
}
