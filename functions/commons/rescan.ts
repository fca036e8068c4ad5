import { z } from 'zod';
import { GENERATION_ID_PATTERN, type ScanGeneration } from './scan-execution.js';
import { type S3Tag, TAG_KEYS, VERDICT_NAMES, type VerdictName } from './verdict.js';

/**
 * Which objects a rescan (retro run) selects, by the verdict tags the last scan wrote. start-scan applies
 * it after its GetObjectTagging of the pinned version, the read it makes for every scan anyway, so a filter
 * costs no extra S3 request and no extra state transition.
 * - `onlyUnscanned`: objects without a `scan-result` tag;
 * - `verdicts`: objects whose `scan-result` is one of these (e.g. Error,Unscannable);
 * - `olderThanDb`: objects scanned with a signature database older than this version, or whose verdict
 *   does not record one (never scanned, or no room for `scan-database` beside the owner's tags): when in
 *   doubt, rescan.
 */
export const rescanFilterSchema = z.union([
  z.strictObject({ onlyUnscanned: z.literal(true) }),
  z.strictObject({ verdicts: z.array(z.enum(VERDICT_NAMES)).min(1) }),
  z.strictObject({ olderThanDb: z.number().int().positive() }),
]);
export type RescanFilter = z.infer<typeof rescanFilterSchema>;

export const scanGenerationSchema = z.union([
  z.strictObject({ trigger: z.literal('upload') }),
  z.strictObject({ trigger: z.enum(['on-demand', 'retro']), id: z.string().regex(GENERATION_ID_PATTERN) }),
]);

function tagValue(tags: readonly S3Tag[], key: string): string | undefined {
  return tags.find((tag) => tag.Key === key)?.Value;
}

/** Why the filter leaves this object out, or undefined when it is to be rescanned. */
export function rescanSkipReason(filter: RescanFilter | undefined, tags: readonly S3Tag[]): string | undefined {
  if (filter === undefined) return undefined;
  const result = tagValue(tags, TAG_KEYS.result);
  if ('onlyUnscanned' in filter) {
    return result === undefined ? undefined : `filter only-unscanned: already scanned (${result})`;
  }
  if ('verdicts' in filter) {
    return result !== undefined && (filter.verdicts as readonly string[]).includes(result)
      ? undefined
      : `filter verdict ${filter.verdicts.join(',')}: scan-result is ${result ?? 'absent'}`;
  }
  const database = tagValue(tags, TAG_KEYS.database);
  const version = database !== undefined && /^\d+$/.test(database) ? Number(database) : undefined;
  return version === undefined || version < filter.olderThanDb
    ? undefined
    : `filter older-than-db ${filter.olderThanDb}: scanned with database ${version}`;
}

export type { ScanGeneration, VerdictName };
