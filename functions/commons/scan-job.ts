import { z } from 'zod';
import { GUARANTEED_VERDICT_TAGS, MAX_VERDICT_TAGS, UNSCANNABLE_REASONS, VERDICT_NAMES } from './verdict.js';

/**
 * The object a scan is about, pinned by start-scan with a HeadObject so that every later call names the
 * exact version (versioned buckets) or is conditional on the ETag (unversioned ones).
 */
export const objectIdentitySchema = z.object({
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  versionId: z.string().min(1).optional(),
  etag: z.string().min(1),
  size: z.number().int().nonnegative().optional(),
  /** When this version was uploaded (ISO 8601): the order promotions keep in the destination. */
  uploadedAt: z.string().min(1).optional(),
  /** S3's event sequencer for this upload (hex), when an event announced it: orders uploads in one second. */
  sequencer: z
    .string()
    .regex(/^[0-9A-F]{1,64}$/)
    .optional(),
});
export type ObjectIdentity = z.infer<typeof objectIdentitySchema>;

/** Per-job overrides; absent fields fall back to the worker's configuration. */
export const scanJobSettingsSchema = z.object({
  maxSizeBytes: z.number().int().positive().optional(),
});

/**
 * One message on the scan-jobs queue, as the ScanObject state sends it
 * (sqs:sendMessage.waitForTaskToken). Extra fields are ignored so the state machine can grow.
 */
export const scanJobSchema = z.object({
  taskToken: z.string().min(1),
  object: objectIdentitySchema.extend({
    /** How many verdict tags fit beside the owner's (start-scan's planOwnerTags). */
    verdictTagRoom: z.number().int().min(GUARANTEED_VERDICT_TAGS).max(MAX_VERDICT_TAGS).optional(),
  }),
  /** Where a Clean version is promoted: the worker checks it holds nothing newer before saying "promote". */
  destinationBucket: z.string().min(3).max(63).optional(),
  settings: scanJobSettingsSchema.optional(),
  executionArn: z.string().optional(),
});
export type ScanJob = z.infer<typeof scanJobSchema>;

export const s3TagSchema = z.object({ Key: z.string(), Value: z.string() });

/**
 * What happens to a Clean version, decided by the worker once the verdict is known (RouteByVerdict):
 * - `promote-new`: the destination has no object under the key; the copy requires that (If-None-Match).
 * - `promote-over`: the destination holds an older promotion; the copy replaces exactly that one (If-Match).
 * - `superseded`: staging's current version is no longer this one, or the destination holds a promotion of
 *   a newer upload: this version is not published, and is removed from staging.
 */
export const PROMOTION_DECISIONS = ['promote-new', 'promote-over', 'superseded'] as const;
export type PromotionDecision = (typeof PROMOTION_DECISIONS)[number];

/**
 * What the worker completes the task token with (SendTaskSuccess output); the ScanObject state stores it at
 * `$.scan`. `tags` is the verdict rendered as S3 tags (verdictTags) so TagVerdict can write it unchanged.
 */
export const scanResultSchema = z.object({
  verdict: z.enum(VERDICT_NAMES),
  reason: z.union([z.enum(UNSCANNABLE_REASONS), z.string()]).optional(),
  signature: z.string().optional(),
  engine: z.string(),
  databaseVersion: z.string(),
  bytesScanned: z.number().int().nonnegative(),
  scanMs: z.number().nonnegative(),
  scannedAt: z.string(),
  tags: z.array(s3TagSchema),
  promotion: z
    .object({
      decision: z.enum(PROMOTION_DECISIONS),
      /** The destination copy a `promote-over` replaces: the copy is conditional on it (If-Match). */
      destinationEtag: z.string().optional(),
      reason: z.string().optional(),
    })
    .optional(),
});
export type ScanResult = z.infer<typeof scanResultSchema>;

/** Pulls the task token out of a message that failed validation, so the failure can still be reported. */
export function taskTokenOf(body: unknown): string | undefined {
  if (typeof body === 'object' && body !== null && 'taskToken' in body) {
    const token = (body as { taskToken: unknown }).taskToken;
    if (typeof token === 'string' && token.length > 0) return token;
  }
  return undefined;
}
