import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CloudFormationClient,
  DescribeStacksCommand,
  type DescribeStacksCommandOutput,
  type Output,
} from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { STATE_DIR } from '../local/runtime/pipeline.js';
import type { LocalLayout } from '../local/runtime/provision.js';
import { unreachable, usageError } from './exit-codes.js';

/**
 * One deployed (or local) pipeline, as every command needs it: where its buckets and state machine are, and
 * how to reach them. `--local` and `--stack` both resolve to this; nothing after resolution knows which.
 */
export interface Target {
  readonly kind: 'local' | 'stack';
  /** `local`, or the stack name. */
  readonly name: string;
  readonly region: string;
  /** AWS partition of the state machine (`aws`, `aws-cn`, `aws-us-gov`): picks the console's domain. */
  readonly partition: string;
  readonly buckets: {
    /** Where uploads land and are scanned: one staging bucket locally, the stack's protected buckets on AWS. */
    readonly staging: readonly string[];
    readonly destination: string;
    readonly quarantine: string;
  };
  readonly stateMachineArn: string;
  readonly resultsTopicArn: string;
  /** How to reach it: the local endpoint and its credentials, or an AWS profile (else the SDK's default chain). */
  readonly connection:
    | {
        readonly kind: 'local';
        readonly endpoint: string;
        readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
        /** The layout file it was read from, for messages. */
        readonly layoutFile: string;
      }
    | { readonly kind: 'aws'; readonly profile?: string };
}

export interface TargetClients {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
}

export function clientsFor(target: Target): TargetClients {
  const { connection, region } = target;
  if (connection.kind === 'local') {
    const options = { region, endpoint: connection.endpoint, credentials: connection.credentials, maxAttempts: 2 };
    // Path-style: bucket subdomains of 127.0.0.1 do not resolve.
    return { s3: new S3Client({ ...options, forcePathStyle: true }), sfn: new SFNClient(options) };
  }
  const options = { region, ...(connection.profile ? { profile: connection.profile } : {}) };
  // Imported buckets may live in another region than the stack: follow S3's redirect rather than fail.
  return { s3: new S3Client({ ...options, followRegionRedirects: true }), sfn: new SFNClient(options) };
}

/** Where `npm start -- --watch` writes its layout. */
export const DEFAULT_LAYOUT_FILE = join(STATE_DIR, 'local.json');

/** The part of `.scanflow/local.json` (LocalRuntime.describe()) a target needs. */
const layoutFileSchema = z.object({
  endpoint: z.url({ protocol: /^https?$/ }),
  region: z.string().min(1),
  buckets: z.object({ staging: z.string().min(1), destination: z.string().min(1), quarantine: z.string().min(1) }),
  resultsTopicArn: z.string().min(1),
  stateMachineArn: z.string().min(1),
  credentials: z
    .object({ AWS_ACCESS_KEY_ID: z.string().min(1).optional(), AWS_SECRET_ACCESS_KEY: z.string().min(1).optional() })
    .optional(),
}) satisfies z.ZodType<Pick<LocalLayout, 'endpoint' | 'region' | 'buckets' | 'resultsTopicArn' | 'stateMachineArn'>>;

/** `arn:<partition>:states:<region>:<account>:stateMachine:<name>` → partition and region. */
export function parseStateMachineArn(arn: string): { partition: string; region: string } | undefined {
  const match = /^arn:([a-z-]+):states:([a-z0-9-]+):\d{12}:stateMachine:[^:]+$/.exec(arn);
  return match?.[1] && match[2] ? { partition: match[1], region: match[2] } : undefined;
}

/** A target from the contents of a layout file; `source` names the file in messages. */
export function targetFromLayout(contents: unknown, source: string): Target {
  const parsed = layoutFileSchema.safeParse(contents);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}`);
    throw unreachable(`${source} is not a scanflow local layout (${problems.join('; ')})`);
  }
  const layout = parsed.data;
  const arn = parseStateMachineArn(layout.stateMachineArn);
  return {
    kind: 'local',
    name: 'local',
    region: layout.region,
    partition: arn?.partition ?? 'aws',
    buckets: {
      staging: [layout.buckets.staging],
      destination: layout.buckets.destination,
      quarantine: layout.buckets.quarantine,
    },
    stateMachineArn: layout.stateMachineArn,
    resultsTopicArn: layout.resultsTopicArn,
    connection: {
      kind: 'local',
      endpoint: layout.endpoint,
      // moto accepts any credentials; the layout carries the ones the local run was started with.
      credentials: {
        accessKeyId: layout.credentials?.AWS_ACCESS_KEY_ID ?? 'local',
        secretAccessKey: layout.credentials?.AWS_SECRET_ACCESS_KEY ?? 'local',
      },
      layoutFile: source,
    },
  };
}

export function readLocalTarget(layoutFile: string): Target {
  let text: string;
  try {
    text = readFileSync(layoutFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw unreachable(
      code === 'ENOENT'
        ? `no local pipeline: ${layoutFile} does not exist. Start one with \`npm start -- --watch\` (it writes that file), or pass --layout <file>.`
        : `cannot read ${layoutFile}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  let contents: unknown;
  try {
    contents = JSON.parse(text);
  } catch {
    throw unreachable(`${layoutFile} is not JSON`);
  }
  return targetFromLayout(contents, layoutFile);
}

/**
 * The CloudFormation outputs ScanflowStack declares (infra/lib/scanflow-stack.ts) that a target is made of.
 * `ProtectedBucket<i>` is one per protected (staging) bucket, numbered from 0.
 */
export const STACK_OUTPUT_KEYS = {
  protectedBucketPrefix: 'ProtectedBucket',
  destination: 'DestinationBucketName',
  quarantine: 'QuarantineBucketName',
  resultsTopic: 'ResultsTopicArn',
  stateMachine: 'StateMachineArn',
} as const;

/** The stack's outputs → a target. Fails (exit 3) naming every output it needs and did not find. */
export function targetFromStackOutputs(
  stackName: string,
  outputs: readonly Output[],
  connection: { readonly profile?: string } = {},
): Target {
  const byKey = new Map(outputs.flatMap((o) => (o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [])));
  const protectedPattern = new RegExp(`^${STACK_OUTPUT_KEYS.protectedBucketPrefix}(\\d+)$`);
  const staging = [...byKey.entries()]
    .flatMap(([key, value]) => {
      const index = protectedPattern.exec(key)?.[1];
      return index === undefined ? [] : [{ index: Number(index), value }];
    })
    .sort((a, b) => a.index - b.index)
    .map((entry) => entry.value);
  const { destination, quarantine, resultsTopic, stateMachine } = STACK_OUTPUT_KEYS;
  const missing: string[] = [destination, quarantine, resultsTopic, stateMachine].filter((key) => !byKey.has(key));
  if (staging.length === 0) missing.unshift(`${STACK_OUTPUT_KEYS.protectedBucketPrefix}0`);
  if (missing.length > 0) {
    throw unreachable(
      `stack ${stackName} is not a scanflow stack, or is still being created: it has no output ${missing.join(', ')}`,
    );
  }
  const stateMachineArn = byKey.get(stateMachine) ?? '';
  const arn = parseStateMachineArn(stateMachineArn);
  if (!arn)
    throw unreachable(`stack ${stackName}: output ${stateMachine} is not a state machine ARN: ${stateMachineArn}`);
  return {
    kind: 'stack',
    name: stackName,
    region: arn.region,
    partition: arn.partition,
    buckets: { staging, destination: byKey.get(destination) ?? '', quarantine: byKey.get(quarantine) ?? '' },
    stateMachineArn,
    resultsTopicArn: byKey.get(resultsTopic) ?? '',
    connection: { kind: 'aws', ...(connection.profile ? { profile: connection.profile } : {}) },
  };
}

/** Reads the stack's outputs with the caller's credentials and region. */
export async function readStackTarget(
  stackName: string,
  cloudFormation: CloudFormationClient,
  connection: { readonly profile?: string } = {},
): Promise<Target> {
  // The SDK only says "Region is missing", from deep inside; say what to do instead.
  const region = await cloudFormation.config.region().catch(() => undefined);
  if (!region) {
    throw usageError('no AWS region for --stack: pass --region, or set AWS_REGION or a region in your AWS profile');
  }
  let described: DescribeStacksCommandOutput;
  try {
    described = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.name === 'ValidationError' && /does not exist/.test(message)) {
      throw unreachable(`no stack ${stackName} in ${region} (pass --region, or set AWS_REGION / AWS_PROFILE)`);
    }
    throw error;
  }
  const stack = described.Stacks?.[0];
  if (!stack) throw unreachable(`no stack ${stackName}`);
  return targetFromStackOutputs(stackName, stack.Outputs ?? [], connection);
}

export interface TargetOptions {
  readonly local?: boolean;
  readonly layout?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly profile?: string;
}

/** `--local [--layout f]` or `--stack <name> [--region r] [--profile p]`: exactly one pipeline. */
export async function resolveTarget(
  options: TargetOptions,
  deps: { readonly cloudFormation?: CloudFormationClient } = {},
): Promise<Target> {
  const local = options.local === true || options.layout !== undefined;
  if (local && options.stack !== undefined) throw usageError('choose one target: --local or --stack <name>, not both');
  if (local) {
    if (options.region !== undefined || options.profile !== undefined) {
      throw usageError('--region and --profile are for --stack; the local layout names its own endpoint and region');
    }
    return readLocalTarget(options.layout ?? DEFAULT_LAYOUT_FILE);
  }
  if (options.stack === undefined) {
    throw usageError(
      'say which pipeline: --local (the one `npm start -- --watch` runs) or --stack <name> (a deployed stack)',
    );
  }
  const connection = options.profile ? { profile: options.profile } : {};
  const cloudFormation =
    deps.cloudFormation ??
    new CloudFormationClient({ ...(options.region ? { region: options.region } : {}), ...connection });
  return readStackTarget(options.stack, cloudFormation, connection);
}

/** Console domains per partition; the console URL scheme is the same in each. */
const CONSOLE_DOMAINS: Readonly<Record<string, string>> = {
  aws: 'console.aws.amazon.com',
  'aws-cn': 'console.amazonaws.cn',
  'aws-us-gov': 'console.amazonaws-us-gov.com',
};

/** The Step Functions console page of one execution; undefined locally (there is no console to link to). */
export function executionConsoleUrl(target: Target, executionArn: string): string | undefined {
  if (target.connection.kind === 'local') return undefined;
  const domain = CONSOLE_DOMAINS[target.partition] ?? CONSOLE_DOMAINS.aws;
  const { region } = target;
  return `https://${region}.${domain}/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

/** A short line saying which pipeline a report is about. */
export function describeTarget(target: Target): string {
  return target.connection.kind === 'local'
    ? `local pipeline at ${target.connection.endpoint} (${target.connection.layoutFile})`
    : `stack ${target.name} in ${target.region}`;
}
