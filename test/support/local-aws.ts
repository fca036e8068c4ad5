import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
} from '@aws-sdk/client-sfn';
import { type MotoServer, startMoto } from '../../local/runtime/moto.js';
import { waitFor } from '../../local/runtime/processes.js';
import {
  createLocalClients,
  type LocalClients,
  type LocalLayout,
  provisionLocalPipeline,
} from '../../local/runtime/provision.js';

export const REGION = 'us-east-1';

/** moto accepts any credentials; the SDK insists on having some. */
export function useLocalCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  process.env.AWS_REGION ??= REGION;
}

export interface LocalPipeline {
  readonly moto: MotoServer;
  readonly clients: LocalClients;
  readonly layout: LocalLayout;
  readonly logDir: string;
  stop(): Promise<void>;
}

let prefixCounter = 0;

/** A fresh moto with the production layout provisioned, for one test file. */
export async function startLocalPipeline(options: { scanJobsVisibilitySeconds?: number } = {}): Promise<LocalPipeline> {
  useLocalCredentials();
  const logDir = mkdtempSync(join(tmpdir(), 'scanflow-test-'));
  const moto = await startMoto({ logDir });
  const clients = createLocalClients(moto.endpoint, REGION);
  prefixCounter += 1;
  const layout = await provisionLocalPipeline(clients, {
    endpoint: moto.endpoint,
    region: REGION,
    prefix: `sf${process.pid}-${prefixCounter}`,
    ...options,
  });
  return { moto, clients, layout, logDir, stop: () => moto.stop() };
}

export async function waitForExecutionEnd(
  clients: LocalClients,
  executionArn: string,
  timeoutMs = 60_000,
): Promise<DescribeExecutionCommandOutput> {
  let last: DescribeExecutionCommandOutput | undefined;
  await waitFor(
    `execution ${executionArn} to end`,
    async () => {
      last = await clients.sfn.send(new DescribeExecutionCommand({ executionArn }));
      return last.status !== 'RUNNING';
    },
    timeoutMs,
    200,
  );
  if (!last) throw new Error('unreachable');
  return last;
}

export async function executionHistory(clients: LocalClients, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** The states an execution entered, in order: what an operator sees in the console, and what is billed. */
export function statePath(history: readonly HistoryEvent[]): string[] {
  return history
    .filter((event) => event.type?.endsWith('StateEntered'))
    .map((event) => event.stateEnteredEventDetails?.name ?? '?');
}

export async function listExecutionArns(clients: LocalClients, stateMachineArn: string): Promise<string[]> {
  const listed = await clients.sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 1000 }));
  return (listed.executions ?? []).map((execution) => execution.executionArn ?? '');
}
