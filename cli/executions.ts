import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionDoesNotExist,
  type ExecutionStatus,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';

/** The statuses ListExecutions filters on (`--status`). */
export const EXECUTION_STATUSES = [
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'ABORTED',
  'PENDING_REDRIVE',
] as const satisfies readonly ExecutionStatus[];

/** One row of the console's execution list. */
export interface ExecutionListItem {
  readonly name: string;
  readonly executionArn: string;
  readonly status: string;
  readonly startDate: Date;
  readonly stopDate?: Date;
}

/**
 * The state machine's executions, newest first (as ListExecutions returns them), paged lazily: stops at the
 * first one started before `since`, so a caller that stops early reads no more pages than it needs.
 */
export async function* listExecutions(
  sfn: SFNClient,
  stateMachineArn: string,
  options: { readonly status?: ExecutionStatus; readonly since?: Date; readonly pageSize?: number } = {},
): AsyncGenerator<ExecutionListItem> {
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new ListExecutionsCommand({
        stateMachineArn,
        maxResults: options.pageSize ?? 1000,
        ...(options.status ? { statusFilter: options.status } : {}),
        ...(nextToken ? { nextToken } : {}),
      }),
    );
    for (const execution of page.executions ?? []) {
      if (!execution.name || !execution.executionArn || !execution.startDate) continue;
      if (options.since && execution.startDate < options.since) return;
      yield {
        name: execution.name,
        executionArn: execution.executionArn,
        status: execution.status ?? 'UNKNOWN',
        startDate: execution.startDate,
        ...(execution.stopDate ? { stopDate: execution.stopDate } : {}),
      };
    }
    nextToken = page.nextToken;
  } while (nextToken);
}

/** DescribeExecution, or undefined when there is no such execution (never started, or expired after 90 days). */
export async function describeExecution(
  sfn: SFNClient,
  executionArn: string,
): Promise<DescribeExecutionCommandOutput | undefined> {
  try {
    return await sfn.send(new DescribeExecutionCommand({ executionArn }));
  } catch (error) {
    if (error instanceof ExecutionDoesNotExist || (error instanceof Error && error.name === 'ExecutionDoesNotExist')) {
      return undefined;
    }
    throw error;
  }
}

/** The states the execution entered, in order: the path the console draws. */
export async function statePathOf(sfn: SFNClient, executionArn: string): Promise<string[]> {
  const path: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new GetExecutionHistoryCommand({
        executionArn,
        maxResults: 1000,
        includeExecutionData: false,
        ...(nextToken ? { nextToken } : {}),
      }),
    );
    for (const event of page.events ?? []) {
      if (event.type?.endsWith('StateEntered')) path.push(event.stateEnteredEventDetails?.name ?? '?');
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return path;
}

/** Executions are named under their state machine: `…:stateMachine:M` → `…:execution:M:<name>`. */
export function executionArnFor(stateMachineArn: string, executionName: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

/** Stop − start; undefined while the execution runs. */
export function durationMs(execution: { readonly startDate: Date; readonly stopDate?: Date }): number | undefined {
  return execution.stopDate ? execution.stopDate.getTime() - execution.startDate.getTime() : undefined;
}

/** Runs `work` over `items`, at most `limit` at a time, keeping the order of `items` in the result. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
