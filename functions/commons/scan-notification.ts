import { z } from 'zod';
import { VERDICT_NAMES } from './verdict.js';

/**
 * Where the scanned version is once the execution ends:
 * - `staging`: left blocked there (Unscannable, Error, or a move that failed);
 * - `destination` / `quarantine`: moved there;
 * - `superseded`: scanned Clean but a newer upload of the key superseded it, so it was not published and
 *   left staging (the result's `scan.promotion.reason` says why);
 * - `gone`: deleted by someone else before the pipeline finished with it.
 */
export const PLACEMENT_AREAS = ['staging', 'destination', 'quarantine', 'superseded', 'gone'] as const;
export type PlacementArea = (typeof PLACEMENT_AREAS)[number];

/**
 * The message NotifyResult publishes for every object (statemachines/scan-object.asl.json). Subscribers —
 * the result recorder, the local run, users' own consumers — read it through this one schema.
 */
export const scanNotificationSchema = z.object({
  object: z.object({
    bucket: z.string(),
    key: z.string(),
    versionId: z.string(),
    etag: z.string(),
    size: z.number(),
    /** Owner tags dropped to make room for the verdict (more than eight); absent in older messages. */
    droppedTags: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
  }),
  verdict: z.enum(VERDICT_NAMES),
  scan: z.looseObject({
    verdict: z.string(),
    reason: z.string().optional(),
    signature: z.string().optional(),
    /** Set when tagging failed: what the scan itself found. */
    scanVerdict: z.string().optional(),
    bytesScanned: z.number().optional(),
    scanMs: z.number().optional(),
  }),
  placement: z.object({ area: z.enum(PLACEMENT_AREAS), bucket: z.string().optional() }),
  // Catch output; Cause can be null (the local engine drops SendTaskFailure's cause).
  failure: z.looseObject({ Error: z.string().optional(), Cause: z.string().nullable().optional() }).nullable(),
  executionArn: z.string(),
});
export type ScanNotification = z.infer<typeof scanNotificationSchema>;

/** Reads a notification from an SQS body: raw SNS delivery (the message itself) or the SNS envelope. */
export function parseScanNotification(body: string): ScanNotification {
  const parsed: unknown = JSON.parse(body);
  const message =
    typeof parsed === 'object' && parsed !== null && 'Type' in parsed && 'Message' in parsed
      ? JSON.parse(String((parsed as { Message: unknown }).Message))
      : parsed;
  return scanNotificationSchema.parse(message);
}

/**
 * A Clean or Infected object that got its verdict but is still in staging: its move (or, for a superseded
 * Clean version, its removal) failed, or no promotion decision came with it. Either way someone must look.
 */
export function moveFailed(notification: ScanNotification): boolean {
  const movable = notification.verdict === 'Clean' || notification.verdict === 'Infected';
  return movable && notification.placement.area === 'staging';
}
