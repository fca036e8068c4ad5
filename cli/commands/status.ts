import type { Command } from 'commander';
import { TAG_KEYS } from '../../functions/commons/verdict.js';
import { renderTable } from '../../local/runtime/table.js';
import { parseS3Url, parseSince, type S3Location } from '../args.js';
import {
  addTargetOptions,
  type CommandContext,
  type CommandResult,
  type CommonOptions,
  type RunTargeted,
} from '../command.js';
import { durationMs } from '../executions.js';
import { EXIT, type ExitCode, usageError } from '../exit-codes.js';
import { formatExecutionDuration, formatTime, renderFields } from '../format.js';
import {
  type Area,
  currentCopies,
  defaultSearchSince,
  findExecutionsOfKey,
  type KeyExecution,
  locateInBucket,
  type ObjectLocation,
  type StatusVerdict,
  summarizeStatus,
  type VerdictState,
} from '../object-status.js';
import { describeTarget, executionConsoleUrl, type Target } from '../target.js';

export interface StatusOptions extends CommonOptions {
  readonly versionId?: string;
  readonly since?: Date;
}

export const STATUS_EXIT_CODES: Readonly<Record<VerdictState, ExitCode>> = {
  Clean: EXIT.ok,
  Infected: EXIT.notClean,
  Unscannable: EXIT.notClean,
  Error: EXIT.notClean,
  'no-verdict': EXIT.noVerdict,
  'not-found': EXIT.notFound,
  unreadable: EXIT.unreachable,
};

function areaOf(target: Target, bucket: string): Area | undefined {
  if (target.buckets.staging.includes(bucket)) return 'staging';
  if (bucket === target.buckets.destination) return 'destination';
  if (bucket === target.buckets.quarantine) return 'quarantine';
  return undefined;
}

/** What `status` found, in the shape `--json` prints (dates as ISO 8601). */
export interface StatusReport {
  readonly target: {
    readonly kind: string;
    readonly name: string;
    readonly region: string;
    readonly stateMachineArn: string;
  };
  readonly object: {
    readonly bucket: string;
    readonly key: string;
    readonly area: Area;
    readonly versionId: string | null;
  };
  readonly verdict: StatusVerdict;
  /** Where the object is now: the buckets whose current version of the key is an object. */
  readonly where: ReturnType<typeof currentCopies>;
  readonly locations: readonly ObjectLocation[];
  readonly executions: readonly (KeyExecution & {
    readonly durationMs: number | null;
    readonly consoleUrl: string | null;
  })[];
  readonly executionsSearchedSince: Date;
}

export async function objectStatus(
  context: CommandContext,
  object: S3Location,
  options: { readonly versionId?: string; readonly since?: Date },
): Promise<StatusReport> {
  const { target, clients } = context;
  const area = areaOf(target, object.bucket);
  if (!area) {
    const { staging, destination, quarantine } = target.buckets;
    throw usageError(
      `${object.bucket} is not a bucket of this pipeline (staging: ${staging.join(', ')}; destination: ${destination}; quarantine: ${quarantine})`,
    );
  }
  // Uploads come from the staging bucket named, or from any of them when a copy's bucket is named.
  const stagingBuckets = area === 'staging' ? [object.bucket] : target.buckets.staging;
  const buckets: { area: Area; bucket: string }[] = [
    ...stagingBuckets.map((bucket) => ({ area: 'staging' as const, bucket })),
    { area: 'destination', bucket: target.buckets.destination },
    { area: 'quarantine', bucket: target.buckets.quarantine },
  ];
  const locations: ObjectLocation[] = [];
  for (const where of buckets) {
    const focus = where.bucket === object.bucket ? options.versionId : undefined;
    locations.push(await locateInBucket(clients.s3, where, object.key, focus));
  }
  const since = options.since ?? defaultSearchSince(locations, context.now);
  const executions = await findExecutionsOfKey(clients.sfn, {
    stateMachineArn: target.stateMachineArn,
    key: object.key,
    stagingBuckets,
    stagingVersions: locations
      .filter((location) => location.area === 'staging')
      .flatMap((location) =>
        location.versions.flatMap((v) =>
          !v.deleteMarker && v.etag ? [{ bucket: location.bucket, versionId: v.versionId, etag: v.etag }] : [],
        ),
      ),
    since,
  });
  const verdict = summarizeStatus({
    named: { area, bucket: object.bucket },
    ...(options.versionId !== undefined ? { versionId: options.versionId } : {}),
    locations,
    executions,
    searchedSince: since,
  });
  return {
    target: { kind: target.kind, name: target.name, region: target.region, stateMachineArn: target.stateMachineArn },
    object: { ...object, area, versionId: options.versionId ?? null },
    verdict,
    where: currentCopies(locations),
    locations,
    executions: executions.map((execution) => ({
      ...execution,
      durationMs: durationMs(execution) ?? null,
      consoleUrl: executionConsoleUrl(target, execution.executionArn) ?? null,
    })),
    executionsSearchedSince: since,
  };
}

function describeVerdict(verdict: StatusVerdict): string {
  const detail = [verdict.reason, verdict.signature].filter(Boolean).join(', ');
  const words: Partial<Record<VerdictState, string>> = {
    'no-verdict': 'no verdict yet',
    'not-found': 'not found',
    unreadable: 'unknown (tags not readable)',
  };
  const state = words[verdict.state] ?? verdict.state;
  return detail ? `${state} (${detail})` : state;
}

export function renderStatus(report: StatusReport, target: Target, now: Date): string {
  const { object, verdict } = report;
  const lines: string[] = [];
  lines.push(`s3://${object.bucket}/${object.key}${object.versionId ? ` version ${object.versionId}` : ''}`);
  lines.push(`  ${describeTarget(target)}`, '');

  const about = [
    verdict.versionId ? `version ${verdict.versionId}` : '',
    verdict.uploadedAt ? `uploaded ${formatTime(verdict.uploadedAt)}` : '',
    verdict.placement ? `placement ${verdict.placement}` : '',
  ].filter(Boolean);
  const where =
    report.where.length === 0
      ? "in none of the pipeline's buckets"
      : report.where.map((copy) => `${copy.area} (s3://${copy.bucket}/${object.key})`).join(', ');
  lines.push(
    renderFields([
      ['verdict', describeVerdict(verdict)],
      ...(about.length > 0 ? ([['about', about.join(', ')]] as [string, string][]) : []),
      ['because', verdict.note],
      ['now', where],
    ]),
  );

  const tagged = report.locations.flatMap((location) => {
    const current = location.versions.find((v) => v.latest && !v.deleteMarker);
    const focus = object.versionId ? location.versions.find((v) => v.versionId === object.versionId) : undefined;
    return [...new Set([current, focus])].flatMap((version) =>
      version && !version.deleteMarker ? [{ location, version }] : [],
    );
  });
  if (tagged.length > 0) {
    lines.push('', 'verdict tags');
    for (const { location, version } of tagged) {
      lines.push(
        `  ${location.area} s3://${location.bucket}/${object.key} version ${version.versionId}${version.latest ? ' (current)' : ''}`,
      );
      const tags = Object.entries(version.verdictTags ?? {});
      if (version.tagsUnreadable) lines.push(`    (tags not readable: ${version.tagsUnreadable})`);
      else lines.push(tags.length > 0 ? renderFields(tags, '    ') : '    (no scan-* tags)');
    }
  }

  lines.push('', 'versions');
  const rows = report.locations.flatMap((location) => {
    const listed = location.versions.map((v) => [
      location.area,
      location.bucket,
      v.versionId,
      v.latest ? 'yes' : '',
      v.deleteMarker
        ? 'delete marker'
        : v.tagsUnreadable
          ? `(${v.tagsUnreadable})`
          : (v.verdictTags?.[TAG_KEYS.result] ?? '(none)'),
      formatTime(v.lastModified),
      v.size === undefined ? '' : String(v.size),
    ]);
    if (location.versions.length === 0) listed.push([location.area, location.bucket, '(no version)', '', '', '', '']);
    if (location.moreVersions > 0) {
      listed.push([location.area, location.bucket, `(${location.moreVersions} older not shown)`, '', '', '', '']);
    }
    return listed;
  });
  lines.push(indent(renderTable(['area', 'bucket', 'version', 'current', TAG_KEYS.result, 'modified', 'bytes'], rows)));

  lines.push(
    '',
    `scan-object executions of this key (newest first, searched since ${formatTime(report.executionsSearchedSince)})`,
  );
  if (report.executions.length === 0) {
    lines.push('  none');
  } else {
    lines.push(
      indent(
        renderTable(
          ['name', 'status', 'upload version', 'started', 'duration', 'verdict', 'placement'],
          report.executions.map((e) => [
            e.name,
            e.status,
            e.upload.versionId,
            formatTime(e.startDate),
            formatExecutionDuration(e, now),
            e.result
              ? [e.result.verdict, e.result.reason ?? e.result.signature].filter(Boolean).join(' ')
              : (e.failure?.error ?? ''),
            e.result?.placement?.area ?? '',
          ]),
        ),
      ),
    );
    for (const e of report.executions) {
      lines.push('', `  ${e.name}`);
      lines.push(
        renderFields(
          [
            ['path', e.statePath.join(' → ') || '(no states entered)'],
            e.consoleUrl ? ['console', e.consoleUrl] : ['arn', e.executionArn],
          ],
          '    ',
        ),
      );
    }
  }
  return lines.join('\n');
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');

export function registerStatus(program: Command, run: RunTargeted, now: Date): void {
  addTargetOptions(
    program
      .command('status')
      .description('the verdict of one object, where it is now, and the scan-object executions that scanned it')
      .argument('<s3-url>', "s3://bucket/key (any of the pipeline's buckets)", parseS3Url)
      .option('--version-id <id>', 'one version: an upload in staging, or a copy in destination/quarantine')
      .option(
        '--since <age-or-time>',
        'list executions back to this: 30m, 1h, 7d, or an ISO time (default: a day before the oldest moved copy)',
        (value: string) => parseSince(value, now),
      ),
  ).action(async (object: S3Location, options: StatusOptions) => {
    await run(options, async (context): Promise<CommandResult> => {
      const report = await objectStatus(context, object, {
        ...(options.versionId !== undefined ? { versionId: options.versionId } : {}),
        ...(options.since ? { since: options.since } : {}),
      });
      return {
        exitCode: STATUS_EXIT_CODES[report.verdict.state],
        json: report,
        human: renderStatus(report, context.target, context.now),
      };
    });
  });
}
