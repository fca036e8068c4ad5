import type { ExecutionStatus } from '@aws-sdk/client-sfn';
import { type Command, Option } from 'commander';
import { renderTable } from '../../local/runtime/table.js';
import { parsePositiveInt, parseSince } from '../args.js';
import { addTargetOptions, type CommandContext, type CommonOptions, type RunTargeted } from '../command.js';
import { durationMs, EXECUTION_STATUSES, type ExecutionListItem, listExecutions } from '../executions.js';
import { EXIT } from '../exit-codes.js';
import { formatExecutionDuration, formatTime } from '../format.js';
import { describeTarget, executionConsoleUrl } from '../target.js';

export interface ExecutionsOptions extends CommonOptions {
  readonly status?: ExecutionStatus;
  readonly since?: Date;
  readonly limit: number;
}

export const DEFAULT_EXECUTIONS_LIMIT = 50;

/** What `executions` found, in the shape `--json` prints (dates as ISO 8601). */
export interface ExecutionsReport {
  readonly target: { readonly kind: string; readonly name: string; readonly region: string };
  readonly stateMachineArn: string;
  readonly filter: { readonly status: string | null; readonly since: Date | null; readonly limit: number };
  /** Newest first, at most `filter.limit`. */
  readonly executions: readonly (ExecutionListItem & {
    readonly durationMs: number | null;
    readonly consoleUrl: string | null;
  })[];
  /** More executions match than the limit let through. */
  readonly more: boolean;
}

export async function listRecentExecutions(
  context: CommandContext,
  options: { readonly status?: ExecutionStatus; readonly since?: Date; readonly limit: number },
): Promise<ExecutionsReport> {
  const { target, clients } = context;
  const found: ExecutionListItem[] = [];
  let more = false;
  for await (const execution of listExecutions(clients.sfn, target.stateMachineArn, {
    ...(options.status ? { status: options.status } : {}),
    ...(options.since ? { since: options.since } : {}),
    // One more than asked for tells whether there are more.
    pageSize: Math.min(1000, options.limit + 1),
  })) {
    if (found.length === options.limit) {
      more = true;
      break;
    }
    found.push(execution);
  }
  return {
    target: { kind: target.kind, name: target.name, region: target.region },
    stateMachineArn: target.stateMachineArn,
    filter: { status: options.status ?? null, since: options.since ?? null, limit: options.limit },
    executions: found.map((execution) => ({
      ...execution,
      durationMs: durationMs(execution) ?? null,
      consoleUrl: executionConsoleUrl(target, execution.executionArn) ?? null,
    })),
    more,
  };
}

export function renderExecutions(report: ExecutionsReport, context: CommandContext): string {
  const { filter } = report;
  const conditions = [
    filter.status ? `status ${filter.status}` : '',
    filter.since ? `started since ${formatTime(filter.since)}` : '',
  ].filter(Boolean);
  const lines = [
    `scan-object executions${conditions.length > 0 ? `, ${conditions.join(', ')}` : ''} (newest first)`,
    `  ${describeTarget(context.target)}`,
    `  ${report.stateMachineArn}`,
    '',
  ];
  if (report.executions.length === 0) {
    lines.push('none');
    return lines.join('\n');
  }
  lines.push(
    renderTable(
      ['name', 'status', 'started', 'duration'],
      report.executions.map((e) => [
        e.name,
        e.status,
        formatTime(e.startDate),
        formatExecutionDuration(e, context.now),
      ]),
    ),
  );
  if (report.more) lines.push('', `showing the newest ${filter.limit}; more match (raise --limit or narrow --since)`);
  return lines.join('\n');
}

export function registerExecutions(program: Command, run: RunTargeted, now: Date): void {
  addTargetOptions(
    program
      .command('executions')
      .description("the scan-object state machine's executions, newest first, like the console's list")
      .addOption(new Option('--status <status>', 'only executions with this status').choices(EXECUTION_STATUSES))
      .option('--since <age-or-time>', 'only executions started since: 30m, 1h, 7d, or an ISO time', (value: string) =>
        parseSince(value, now),
      )
      .option('--limit <n>', 'at most this many', parsePositiveInt, DEFAULT_EXECUTIONS_LIMIT),
  ).action(async (options: ExecutionsOptions) => {
    await run(options, async (context) => {
      const report = await listRecentExecutions(context, {
        ...(options.status ? { status: options.status } : {}),
        ...(options.since ? { since: options.since } : {}),
        limit: options.limit,
      });
      return { exitCode: EXIT.ok, json: report, human: renderExecutions(report, context) };
    });
  });
}
