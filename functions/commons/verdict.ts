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
 * `deleted`: the version was deleted before it could be scanned; the result still reports it, so every
 * upload is accounted for.
 */
export const UNSCANNABLE_REASONS = [
  'too-large',
  'encrypted',
  'limits-exceeded',
  'unsupported-encryption',
  'unsupported-format',
  'deleted',
] as const;
export type UnscannableReason = (typeof UNSCANNABLE_REASONS)[number];

/** Error reasons the pipeline decides itself (other Error reasons are the names of failed steps). */
export const PIPELINE_ERROR_REASONS = {
  /** The object has no version id (unversioned or suspended bucket): no later call could name exactly it. */
  unversionedBucket: 'unversioned-bucket',
} as const;

export type Verdict =
  | { readonly verdict: 'Clean' }
  | { readonly verdict: 'Infected'; readonly signature: string }
  | { readonly verdict: 'Unscannable'; readonly reason: UnscannableReason; readonly signature?: string }
  | { readonly verdict: 'Error'; readonly reason: string };

export interface S3Tag {
  readonly Key: string;
  readonly Value: string;
}

/** S3 allows 10 tags per object; the owner's and ours share them. */
export const S3_MAX_TAGS_PER_OBJECT = 10;

/**
 * Our tag keys. Only non-empty values are written, in a per-verdict priority order (see
 * {@link verdictTags}), as many as the owner's tags leave room for.
 * `scan-uploaded` is when the scanned version was uploaded to staging: promotion compares it with the
 * destination's copy so an older scan never replaces a newer promotion.
 */
export const TAG_KEYS = {
  result: 'scan-result',
  reason: 'scan-reason',
  signature: 'scan-signature',
  uploaded: 'scan-uploaded',
  time: 'scan-time',
  database: 'scan-database',
} as const;
export const SCAN_TAG_PREFIX = 'scan-';

/**
 * Tags every verdict can always write: `scan-result` plus the one that matters most for it (the reason,
 * the signature, or for Clean the upload time promotion orders by). The owner keeps at most
 * 10 − this many tags on the scanned object, so placement never depends on the owner's tag count.
 */
export const GUARANTEED_VERDICT_TAGS = 2;
/** The most verdict tags ever written; fewer when the owner's tags leave less room. */
export const MAX_VERDICT_TAGS = 5;
export const MAX_OWNER_TAGS = S3_MAX_TAGS_PER_OBJECT - GUARANTEED_VERDICT_TAGS;

/**
 * Any case, any compatibility form: S3 tag keys are case-sensitive, but a reader that looks for
 * `Scan-Result` (or compares case-insensitively) must never find one the pipeline did not write, so every
 * variant of the prefix belongs to the pipeline.
 */
export function isScanTagKey(key: string): boolean {
  // NFKC folds look-alikes a reader may equate with `s` (fullwidth ｓ, long ſ) before the case fold.
  return key.normalize('NFKC').toLowerCase().startsWith(SCAN_TAG_PREFIX);
}

export function reasonOf(verdict: Verdict): string {
  return verdict.verdict === 'Unscannable' || verdict.verdict === 'Error' ? verdict.reason : '';
}

export function signatureOf(verdict: Verdict): string {
  if (verdict.verdict === 'Infected') return verdict.signature;
  if (verdict.verdict === 'Unscannable') return verdict.signature ?? '';
  return '';
}

type TagKey = (typeof TAG_KEYS)[keyof typeof TAG_KEYS];
const { result, reason, signature, uploaded, time, database } = TAG_KEYS;
/** Per verdict, which tags matter most when room is short. */
export const VERDICT_TAG_ORDER: Readonly<Record<VerdictName, readonly TagKey[]>> = {
  Clean: [result, uploaded, time, database],
  Infected: [result, signature, time, database, uploaded],
  Unscannable: [result, reason, signature, time, database],
  Error: [result, reason, time, database],
};

/** What the verdict tags say besides the verdict itself. */
export interface VerdictTagContext {
  readonly scannedAt: string;
  /** The signature database version the scan ran with ('' when no scan ran). */
  readonly databaseVersion: string;
  /** When the scanned version was uploaded (ISO 8601), from start-scan's HeadObject. */
  readonly uploadedAt: string;
}

/**
 * The verdict as S3 tags, most important first, at most `room` of them (never fewer than
 * {@link GUARANTEED_VERDICT_TAGS}: start-scan keeps the owner's tags within {@link MAX_OWNER_TAGS}).
 * The state machine's error path writes the first two of the Error order in ASL
 * (statemachines/scan-object.asl.json, RecordScanError); a unit test holds both to this order.
 */
export function verdictTags(verdict: Verdict, context: VerdictTagContext, room = MAX_VERDICT_TAGS): S3Tag[] {
  const value = {
    [TAG_KEYS.result]: verdict.verdict,
    [TAG_KEYS.reason]: reasonOf(verdict),
    [TAG_KEYS.signature]: sanitizeTagValue(signatureOf(verdict)),
    [TAG_KEYS.uploaded]: sanitizeTagValue(context.uploadedAt),
    [TAG_KEYS.time]: sanitizeTagValue(context.scannedAt),
    [TAG_KEYS.database]: sanitizeTagValue(context.databaseVersion),
  };
  const order = VERDICT_TAG_ORDER[verdict.verdict];
  return order
    .filter((key) => value[key] !== '')
    .slice(0, Math.max(GUARANTEED_VERDICT_TAGS, Math.min(room, MAX_VERDICT_TAGS)))
    .map((key) => ({ Key: key, Value: value[key] }));
}

/**
 * S3 tag values allow letters, digits, spaces and `+ - = . _ : / @`, up to 256 characters. ClamAV
 * signature names are almost always inside that set; anything else becomes `_` rather than failing the tag.
 */
export function sanitizeTagValue(value: string): string {
  return value.replace(/[^\p{L}\p{N} +\-=._:/@]/gu, '_').slice(0, 256);
}

export interface OwnerTagPlan {
  /** The owner's tags that stay on the scanned object (and its moved copy): no `scan-*` key in any case. */
  readonly ownerTags: S3Tag[];
  /** Owner tags beyond {@link MAX_OWNER_TAGS}, dropped to make room for the verdict; the notification lists them. */
  readonly droppedOwnerTags: S3Tag[];
  /** Foreign `scan-*` tags (any case) found on the object: only the pipeline writes those, so they are discarded. */
  readonly discardedScanTags: S3Tag[];
  /** How many verdict tags fit beside the owner's: {@link GUARANTEED_VERDICT_TAGS}..{@link MAX_VERDICT_TAGS}. */
  readonly verdictTagRoom: number;
}

/**
 * Splits the object's current tags into what the pipeline keeps and what it drops. PutObjectTagging
 * replaces the whole set, so whatever is not kept here is gone from the object once the verdict is written.
 */
export function planOwnerTags(existing: readonly S3Tag[]): OwnerTagPlan {
  const discardedScanTags = existing.filter((tag) => isScanTagKey(tag.Key));
  const owner = existing.filter((tag) => !isScanTagKey(tag.Key));
  const ownerTags = owner.slice(0, MAX_OWNER_TAGS);
  return {
    ownerTags,
    droppedOwnerTags: owner.slice(MAX_OWNER_TAGS),
    discardedScanTags,
    verdictTagRoom: Math.min(MAX_VERDICT_TAGS, S3_MAX_TAGS_PER_OBJECT - ownerTags.length),
  };
}
