import {
  GetObjectTaggingCommand,
  ListObjectVersionsCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { executionNameFor, NULL_VERSION_ID } from '../functions/commons/scan-execution.js';
import { isScanTagKey, TAG_KEYS, VERDICT_NAMES, type VerdictName } from '../functions/commons/verdict.js';
import { describeExecution, executionArnFor, listExecutions, mapLimit, statePathOf } from './executions.js';

/** The pipeline's three kinds of bucket, named as the result notification's `placement.area` names them. */
export type Area = 'staging' | 'destination' | 'quarantine';

export interface VersionInfo extends ListedVersion {
  /** The pipeline's `scan-*` tags on this version; absent for delete markers and versions not looked at. */
  readonly verdictTags?: Readonly<Record<string, string>>;
  /**
   * Why the tags could not be read: `AccessDenied` (the quarantine bucket lets only the pipeline and the
   * security role read tags), or `gone` (deleted since it was listed).
   */
  readonly tagsUnreadable?: string;
}

export interface ObjectLocation {
  readonly area: Area;
  readonly bucket: string;
  /** Newest first, at most {@link MAX_VERSIONS_SHOWN} (plus the one asked for with --version-id). */
  readonly versions: readonly VersionInfo[];
  /** How many older versions were left out. */
  readonly moreVersions: number;
}

export const MAX_VERSIONS_SHOWN = 10;

/** One version or delete marker as ListObjectVersions gives it. */
export interface ListedVersion {
  readonly versionId: string;
  readonly latest: boolean;
  readonly deleteMarker: boolean;
  readonly lastModified?: Date;
  readonly size?: number;
  readonly etag?: string;
}

/** Every version and delete marker of exactly `key` (not of the keys it prefixes), newest first. */
export async function listVersionsOfKey(s3: S3Client, bucket: string, key: string): Promise<ListedVersion[]> {
  const found: ListedVersion[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: key,
        ...(keyMarker ? { KeyMarker: keyMarker } : {}),
        ...(versionIdMarker ? { VersionIdMarker: versionIdMarker } : {}),
      }),
    );
    const entries: (ListedVersion & { readonly key?: string })[] = [
      ...(page.Versions ?? []).map((v) => ({
        key: v.Key,
        versionId: v.VersionId ?? 'null',
        latest: v.IsLatest === true,
        deleteMarker: false,
        ...(v.LastModified ? { lastModified: v.LastModified } : {}),
        ...(v.Size !== undefined ? { size: v.Size } : {}),
        ...(v.ETag !== undefined ? { etag: v.ETag } : {}),
      })),
      ...(page.DeleteMarkers ?? []).map((m) => ({
        key: m.Key,
        versionId: m.VersionId ?? 'null',
        latest: m.IsLatest === true,
        deleteMarker: true,
        ...(m.LastModified ? { lastModified: m.LastModified } : {}),
      })),
    ];
    for (const { key: entryKey, ...version } of entries) if (entryKey === key) found.push(version);
    // Keys are listed in order and `key` sorts before every longer key it prefixes: once another key shows
    // up, every version of `key` has been seen.
    if (!page.IsTruncated || entries.some((entry) => entry.key !== key)) break;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
  return found.sort(
    (a, b) =>
      (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0) || Number(b.latest) - Number(a.latest),
  );
}

async function verdictTagsOf(s3: S3Client, bucket: string, key: string, versionId: string) {
  const tagging = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Object.fromEntries(
    (tagging.TagSet ?? []).filter((tag) => isScanTagKey(tag.Key ?? '')).map((tag) => [tag.Key ?? '', tag.Value ?? '']),
  );
}

/** The key's versions in one bucket, the newest ones (and `focusVersionId`) with their verdict tags. */
export async function locateInBucket(
  s3: S3Client,
  where: { readonly area: Area; readonly bucket: string },
  key: string,
  focusVersionId?: string,
): Promise<ObjectLocation> {
  const listed = await listVersionsOfKey(s3, where.bucket, key);
  const shown = listed.filter((v, index) => index < MAX_VERSIONS_SHOWN || v.versionId === focusVersionId);
  const versions = await mapLimit(shown, 4, async (version): Promise<VersionInfo> => {
    if (version.deleteMarker) return version;
    try {
      return { ...version, verdictTags: await verdictTagsOf(s3, where.bucket, key, version.versionId) };
    } catch (error) {
      // One unreadable version must not hide the rest of the answer: say so next to it.
      if (!(error instanceof S3ServiceException)) throw error;
      const status = error.$metadata.httpStatusCode;
      if (status === 403) return { ...version, tagsUnreadable: error.name };
      if (status === 404) return { ...version, tagsUnreadable: 'gone' };
      throw error;
    }
  });
  return { ...where, versions, moreVersions: listed.length - shown.length };
}

/** One scan-object execution of the key, with what its input and output say about the upload. */
export interface KeyExecution {
  readonly name: string;
  readonly executionArn: string;
  readonly status: string;
  readonly startDate: Date;
  readonly stopDate?: Date;
  /** The upload it scanned (its input's `object`). */
  readonly upload: {
    readonly bucket: string;
    readonly versionId: string;
    readonly etag?: string;
    readonly uploadedAt?: string;
  };
  /** Its output once it succeeded: the result NotifyResult published. */
  readonly result?: {
    readonly verdict: string;
    readonly reason?: string;
    readonly signature?: string;
    /** Set when tagging failed: what the scan itself found. */
    readonly scanVerdict?: string;
    readonly placement?: { readonly area: string; readonly bucket?: string };
  };
  /** Why it did not succeed (FAILED, TIMED_OUT, ABORTED). */
  readonly failure?: { readonly error?: string; readonly cause?: string };
  readonly statePath: readonly string[];
}

const executionInputSchema = z.looseObject({
  object: z.looseObject({
    bucket: z.string(),
    key: z.string(),
    versionId: z.string(),
    etag: z.string().optional(),
    uploadedAt: z.string().optional(),
  }),
});

const executionOutputSchema = z.looseObject({
  scan: z.looseObject({
    verdict: z.string(),
    reason: z.string().optional(),
    signature: z.string().optional(),
    scanVerdict: z.string().optional(),
  }),
  placement: z.looseObject({ area: z.string(), bucket: z.string().optional() }).optional(),
});

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The names executionNameFor gives uploads of `key`: `<slug>-<32 hex>`, or the hash alone when the key's
 * last segment has nothing to make a slug of. The slug is the same for every upload of the key.
 */
export function executionNamePatternFor(key: string): RegExp {
  const probe = executionNameFor({ bucket: '', key, etag: '' });
  const hashLength = 32;
  const slug = probe.length > hashLength ? probe.slice(0, -(hashLength + 1)) : '';
  const escaped = slug.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(slug ? `^${escaped}-[0-9a-f]{${hashLength}}$` : `^[0-9a-f]{${hashLength}}$`);
}

export interface ExecutionSearch {
  readonly stateMachineArn: string;
  readonly key: string;
  /** Uploads of the key come from these buckets. */
  readonly stagingBuckets: readonly string[];
  /** Versions of the key still in staging: their execution names are computed, not searched for. */
  readonly stagingVersions: readonly { readonly bucket: string; readonly versionId: string; readonly etag: string }[];
  /** How far back to list executions for uploads no longer in staging. */
  readonly since: Date;
}

/**
 * The key's scan-object executions, newest first. Versions still in staging name theirs directly
 * (executionNameFor); for moved or deleted ones the state machine's executions since `search.since` are
 * listed and those whose name has the key's slug are described, keeping those whose input is this key.
 */
export async function findExecutionsOfKey(sfn: SFNClient, search: ExecutionSearch): Promise<KeyExecution[]> {
  const arns = new Set(
    search.stagingVersions.flatMap((version) =>
      // An unversioned bucket's object is listed as version "null"; start-scan named its execution from a
      // HeadObject that may have returned no version id at all. Both names are tried.
      (version.versionId === NULL_VERSION_ID ? [undefined, NULL_VERSION_ID] : [version.versionId]).map((versionId) =>
        executionArnFor(
          search.stateMachineArn,
          executionNameFor({ bucket: version.bucket, key: search.key, versionId, etag: version.etag }),
        ),
      ),
    ),
  );
  const pattern = executionNamePatternFor(search.key);
  for await (const execution of listExecutions(sfn, search.stateMachineArn, { since: search.since })) {
    if (pattern.test(execution.name)) arns.add(execution.executionArn);
  }
  const described = await mapLimit([...arns], 4, async (executionArn): Promise<KeyExecution | undefined> => {
    const execution = await describeExecution(sfn, executionArn);
    if (!execution?.name || !execution.startDate) return undefined;
    const input = executionInputSchema.safeParse(parseJson(execution.input));
    if (!input.success) return undefined;
    const { object } = input.data;
    if (object.key !== search.key || !search.stagingBuckets.includes(object.bucket)) return undefined;
    const output = executionOutputSchema.safeParse(parseJson(execution.output));
    const status = execution.status ?? 'UNKNOWN';
    return {
      name: execution.name,
      executionArn,
      status,
      startDate: execution.startDate,
      ...(execution.stopDate ? { stopDate: execution.stopDate } : {}),
      upload: {
        bucket: object.bucket,
        versionId: object.versionId,
        ...(object.etag ? { etag: object.etag } : {}),
        ...(object.uploadedAt ? { uploadedAt: object.uploadedAt } : {}),
      },
      ...(status === 'SUCCEEDED' && output.success
        ? {
            result: {
              verdict: output.data.scan.verdict,
              ...(output.data.scan.reason ? { reason: output.data.scan.reason } : {}),
              ...(output.data.scan.signature ? { signature: output.data.scan.signature } : {}),
              ...(output.data.scan.scanVerdict ? { scanVerdict: output.data.scan.scanVerdict } : {}),
              ...(output.data.placement
                ? {
                    placement: {
                      area: output.data.placement.area,
                      ...(output.data.placement.bucket ? { bucket: output.data.placement.bucket } : {}),
                    },
                  }
                : {}),
            },
          }
        : {}),
      ...(execution.error || execution.cause
        ? {
            failure: {
              ...(execution.error ? { error: execution.error } : {}),
              ...(execution.cause ? { cause: execution.cause } : {}),
            },
          }
        : {}),
      statePath: await statePathOf(sfn, executionArn),
    };
  });
  return described
    .filter((execution): execution is KeyExecution => execution !== undefined)
    .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
}

/**
 * How far back to list executions when none is asked for. Uploads still in staging are found by name, so
 * the list is only for uploads that were moved: a day before the oldest copy of the key shown in destination
 * or quarantine (a copy is made as its execution ends; a day covers the longest scan, 3 h, and its retries),
 * else a day back (for uploads that left no copy: superseded, deleted).
 */
export function defaultSearchSince(locations: readonly ObjectLocation[], now: Date): Date {
  const day = 86_400_000;
  const copies = locations
    .filter((location) => location.area !== 'staging')
    .flatMap((location) =>
      location.versions.flatMap((v) => (!v.deleteMarker && v.lastModified ? [v.lastModified.getTime()] : [])),
    );
  return new Date(Math.min(now.getTime(), ...copies) - day);
}

/**
 * The answer to "is it Clean": a verdict, or why there is none (`unreadable`: the verdict is in tags these
 * credentials may not read). Exit codes follow `state`.
 */
export type VerdictState = VerdictName | 'no-verdict' | 'not-found' | 'unreadable';

export interface StatusVerdict {
  readonly state: VerdictState;
  readonly reason?: string;
  readonly signature?: string;
  /** The upload (staging version id) or copy the verdict is about, when known. */
  readonly versionId?: string;
  readonly uploadedAt?: string;
  /** Where that upload is now: the execution's placement, or the area whose tags gave the verdict. */
  readonly placement?: string;
  /** What the verdict was read from: the upload's execution output, the object's tags, or nothing. */
  readonly basis: 'execution' | 'tags' | 'none';
  /** For a human: where the verdict comes from, or why there is none. */
  readonly note: string;
}

export interface StatusFacts {
  /** The bucket the user named and what it is. */
  readonly named: { readonly area: Area; readonly bucket: string };
  readonly versionId?: string;
  readonly locations: readonly ObjectLocation[];
  /** Newest first. */
  readonly executions: readonly KeyExecution[];
  readonly searchedSince: Date;
}

interface Upload {
  readonly bucket: string;
  readonly versionId: string;
  readonly uploadedAt?: string;
  execution?: KeyExecution;
  stagingVersion?: VersionInfo;
}

const isVerdictName = (value: string | undefined): value is VerdictName => VERDICT_NAMES.some((name) => name === value);

function fromTags(version: VersionInfo, area: Area, what: string): StatusVerdict {
  const tags = version.verdictTags ?? {};
  const result = tags[TAG_KEYS.result];
  const common = {
    versionId: version.versionId,
    ...(version.lastModified && area === 'staging' ? { uploadedAt: version.lastModified.toISOString() } : {}),
    placement: area,
  };
  if (version.tagsUnreadable) {
    return {
      state: 'unreadable',
      ...common,
      basis: 'none',
      note: `the tags of ${what} cannot be read (${version.tagsUnreadable})`,
    };
  }
  if (!isVerdictName(result)) {
    return {
      state: 'no-verdict',
      ...common,
      basis: 'none',
      note: `${what} has no ${TAG_KEYS.result} tag: not scanned (yet)`,
    };
  }
  return {
    state: result,
    ...(tags[TAG_KEYS.reason] ? { reason: tags[TAG_KEYS.reason] } : {}),
    ...(tags[TAG_KEYS.signature] ? { signature: tags[TAG_KEYS.signature] } : {}),
    ...common,
    basis: 'tags',
    note: `from the ${TAG_KEYS.result} tag of ${what}`,
  };
}

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

const time = (iso: string | undefined, fallback: Date | undefined) =>
  iso !== undefined && !Number.isNaN(Date.parse(iso)) ? Date.parse(iso) : (fallback?.getTime() ?? 0);

function judgeUpload(upload: Upload, facts: StatusFacts): StatusVerdict {
  const about = {
    versionId: upload.versionId,
    ...(upload.uploadedAt ? { uploadedAt: upload.uploadedAt } : {}),
  };
  const execution = upload.execution;
  if (execution) {
    const { status, name } = execution;
    if (status === 'RUNNING' || status === 'PENDING_REDRIVE') {
      return {
        state: 'no-verdict',
        ...about,
        placement: 'staging',
        basis: 'execution',
        note: `its scan is still running (execution ${name})`,
      };
    }
    if (status === 'SUCCEEDED' && execution.result) {
      const { verdict, reason, signature, placement } = execution.result;
      return {
        state: isVerdictName(verdict) ? verdict : 'Error',
        ...(reason ? { reason } : {}),
        ...(signature ? { signature } : {}),
        ...about,
        ...(placement ? { placement: placement.area } : {}),
        basis: 'execution',
        note: `from the result of execution ${name}`,
      };
    }
    if (status !== 'SUCCEEDED') {
      return {
        state: 'Error',
        reason: execution.failure?.error ?? `execution ${status}`,
        ...about,
        placement: 'staging',
        basis: 'execution',
        note: `execution ${name} ended ${status} without a result; the upload stays blocked in staging`,
      };
    }
  }
  if (upload.stagingVersion) {
    const judged = fromTags(upload.stagingVersion, 'staging', `version ${upload.versionId} in staging`);
    if (judged.state !== 'no-verdict') return judged;
    return {
      ...judged,
      ...about,
      note: `no ${TAG_KEYS.result} tag and no scan-object execution since ${isoSeconds(facts.searchedSince)}: not scanned yet (or excluded from scanning)`,
    };
  }
  return {
    state: 'no-verdict',
    ...about,
    basis: 'none',
    note: `execution ${execution?.name ?? '?'} has no readable result`,
  };
}

/**
 * Which upload `status` is about and what its verdict is:
 * - `--version-id` of a destination or quarantine copy: that copy's tags;
 * - `--version-id` of a staging upload: that upload;
 * - otherwise the newest upload of the key (by upload time): its execution's result (running → no verdict),
 *   else its tags in staging; with no upload known, the newest copy in destination or quarantine.
 */
export function summarizeStatus(facts: StatusFacts): StatusVerdict {
  const { named, versionId, locations } = facts;
  const notFound = (note: string): StatusVerdict => ({ state: 'not-found', basis: 'none', note });

  if (versionId !== undefined && named.area !== 'staging') {
    const version = locations
      .find((location) => location.bucket === named.bucket)
      ?.versions.find((v) => v.versionId === versionId);
    if (!version || version.deleteMarker) return notFound(`no version ${versionId} in ${named.bucket}`);
    return fromTags(version, named.area, `version ${versionId} in ${named.area}`);
  }

  const uploads = new Map<string, Upload>();
  const id = (bucket: string, version: string) => `${bucket}\u0000${version}`;
  for (const execution of facts.executions) {
    const { bucket, versionId: uploadVersion, uploadedAt } = execution.upload;
    const existing = uploads.get(id(bucket, uploadVersion));
    if (existing) continue; // newest first: the first execution of an upload is its latest
    uploads.set(id(bucket, uploadVersion), {
      bucket,
      versionId: uploadVersion,
      uploadedAt: uploadedAt ?? execution.startDate.toISOString(),
      execution,
    });
  }
  for (const location of locations.filter((l) => l.area === 'staging')) {
    for (const version of location.versions.filter((v) => !v.deleteMarker)) {
      const upload = uploads.get(id(location.bucket, version.versionId)) ?? {
        bucket: location.bucket,
        versionId: version.versionId,
        ...(version.lastModified ? { uploadedAt: version.lastModified.toISOString() } : {}),
      };
      upload.stagingVersion = version;
      uploads.set(id(location.bucket, version.versionId), upload);
    }
  }

  if (versionId !== undefined) {
    const upload = uploads.get(id(named.bucket, versionId));
    return upload ? judgeUpload(upload, facts) : notFound(`no upload ${versionId} of this key in ${named.bucket}`);
  }
  const newest = [...uploads.values()].sort(
    (a, b) =>
      time(b.uploadedAt, b.execution?.startDate) - time(a.uploadedAt, a.execution?.startDate) ||
      (b.execution?.startDate.getTime() ?? 0) - (a.execution?.startDate.getTime() ?? 0),
  )[0];
  if (newest) return judgeUpload(newest, facts);

  // No upload is known any more (executions expired, staging versions gone): the copies that were moved.
  const copies = locations
    .filter((location) => location.area !== 'staging')
    .flatMap((location) => {
      const current = location.versions.find((v) => v.latest);
      return current && !current.deleteMarker ? [{ area: location.area, current }] : [];
    })
    .sort((a, b) => (b.current.lastModified?.getTime() ?? 0) - (a.current.lastModified?.getTime() ?? 0));
  const copy = copies[0];
  if (copy) return fromTags(copy.current, copy.area, `the current copy in ${copy.area}`);
  return notFound(
    `no version in the pipeline's buckets and no scan-object execution since ${isoSeconds(facts.searchedSince)}`,
  );
}

/** The buckets whose current version of the key is an object (not a delete marker): where it is now. */
export function currentCopies(
  locations: readonly ObjectLocation[],
): { readonly area: Area; readonly bucket: string; readonly versionId: string }[] {
  return locations.flatMap((location) => {
    const current = location.versions.find((v) => v.latest);
    return current && !current.deleteMarker
      ? [{ area: location.area, bucket: location.bucket, versionId: current.versionId }]
      : [];
  });
}
