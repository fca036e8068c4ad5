import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { REPO_ROOT } from '../../infra/lib/scan-pipeline.js';
import type { ScanPipelineProps } from '../../infra/lib/scan-pipeline-props.js';
import { ScanflowStack, type ScanflowStackProps } from '../../infra/lib/scanflow-stack.js';

/** The context `cdk synth` uses (feature flags included), so tests see the template a deploy would. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

export interface Synthesized {
  readonly app: App;
  readonly stack: ScanflowStack;
  readonly template: Template;
}

/**
 * Builds the Scanflow stack like the app does. `prebuiltImage` swaps the scanner image asset for a registry
 * image, for tests that are about something else than the image build.
 */
export function synthScanflow(
  pipeline: ScanPipelineProps | ((stack: ScanflowStack) => ScanPipelineProps) = {},
  options: { prebuiltImage?: boolean; stackProps?: Omit<ScanflowStackProps, 'pipeline'> } = {},
): Synthesized {
  const app = new App({ context: cdkJsonContext() });
  const withImage = (props: ScanPipelineProps): ScanPipelineProps =>
    options.prebuiltImage
      ? { scannerImage: ecs.ContainerImage.fromRegistry('public.ecr.aws/example/scanflow-scanner:test'), ...props }
      : props;
  const stack = new ScanflowStack(app, 'Scanflow', {
    ...options.stackProps,
    pipeline: (s) => withImage(typeof pipeline === 'function' ? pipeline(s as ScanflowStack) : pipeline),
  });
  let template: Template | undefined;
  // Lazy: cdk-nag checks walk the construct tree and need no synthesized template.
  return {
    app,
    stack,
    get template() {
      template ??= Template.fromStack(stack);
      return template;
    },
  };
}

type Json = Record<string, unknown>;

export interface PolicyStatementJson {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource?: unknown;
  readonly Principal?: unknown;
  readonly Condition?: Json;
}

export function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Every statement of every identity policy (AWS::IAM::Policy and inline role policies) in the template. */
export function identityStatements(template: Template): Array<{ policy: string; statement: PolicyStatementJson }> {
  const out: Array<{ policy: string; statement: PolicyStatementJson }> = [];
  for (const [id, resource] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
    const doc = (resource as { Properties: { PolicyDocument: { Statement: PolicyStatementJson[] } } }).Properties
      .PolicyDocument;
    for (const statement of doc.Statement) out.push({ policy: id, statement });
  }
  for (const [id, resource] of Object.entries(template.findResources('AWS::IAM::Role'))) {
    const policies = (
      resource as { Properties: { Policies?: Array<{ PolicyDocument: { Statement: PolicyStatementJson[] } }> } }
    ).Properties.Policies;
    for (const policy of policies ?? [])
      for (const statement of policy.PolicyDocument.Statement) out.push({ policy: id, statement });
  }
  return out;
}

/** The statements of the identity policies attached to the role whose logical ID is `roleId`. */
export function statementsOfRole(template: Template, roleId: string): PolicyStatementJson[] {
  const out: PolicyStatementJson[] = [];
  for (const resource of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const props = (resource as { Properties: { Roles: Json[]; PolicyDocument: { Statement: PolicyStatementJson[] } } })
      .Properties;
    if (props.Roles.some((r) => r.Ref === roleId)) out.push(...props.PolicyDocument.Statement);
  }
  return out;
}

/** The logical ID a `{ Ref }` or `{ Fn::GetAtt }` points at. */
export function referencedId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Json;
  if (typeof v.Ref === 'string') return v.Ref;
  const getAtt = v['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  return undefined;
}

/** Every logical ID referenced anywhere inside `value`. */
export function referencedIds(value: unknown): Set<string> {
  const ids = new Set<string>();
  const visit = (node: unknown) => {
    const id = referencedId(node);
    if (id) ids.add(id);
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === 'object' && node !== null) Object.values(node).forEach(visit);
  };
  visit(value);
  return ids;
}

/**
 * Renders a CloudFormation value (an `Fn::Join` of strings and references) into one string, each reference
 * replaced by `standIn` (by default `<LogicalId>` or `<LogicalId.Attribute>`).
 */
export function renderCfnString(
  value: unknown,
  standIn: (reference: { ref?: string; getAtt?: [string, string] }) => string = ({ ref, getAtt }) =>
    getAtt ? `<${getAtt[0]}.${getAtt[1]}>` : `<${ref}>`,
): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) throw new Error(`cannot render ${JSON.stringify(value)}`);
  const v = value as Json;
  const join = v['Fn::Join'];
  if (Array.isArray(join)) {
    const [delimiter, parts] = join as [string, unknown[]];
    return parts.map((part) => renderCfnString(part, standIn)).join(delimiter);
  }
  if (typeof v.Ref === 'string') return standIn({ ref: v.Ref });
  const getAtt = v['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return standIn({ getAtt: getAtt as [string, string] });
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** The logical IDs of the three pipeline roles. */
export function pipelineRoleIds(template: Template): { stateMachine: string; startScan: string; worker: string } {
  const need = (v: unknown, what: string) => {
    const id = referencedId(v);
    if (!id) throw new Error(`${what} is not a reference: ${JSON.stringify(v)}`);
    return id;
  };
  const [sm] = Object.values(template.findResources('AWS::StepFunctions::StateMachine')) as Array<{
    Properties: { RoleArn: unknown };
  }>;
  const [startScan] = Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { STATE_MACHINE_ARN: Match.anyValue() } } },
    }),
  ) as Array<{ Properties: { Role: unknown } }>;
  const [task] = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Array<{
    Properties: { TaskRoleArn: unknown };
  }>;
  return {
    stateMachine: need(sm?.Properties.RoleArn, 'state machine role'),
    startScan: need(startScan?.Properties.Role, 'start-scan role'),
    worker: need(task?.Properties.TaskRoleArn, 'task role'),
  };
}

export interface PrintedBucketPolicy {
  readonly role: string;
  /** The output value as CloudFormation will resolve it, references rendered by `renderCfnString`. */
  readonly text: string;
  readonly statements: PolicyStatementJson[];
}

/** The `ImportedBucketPolicy<n>` outputs by bucket name, parsed. */
export function printedBucketPolicies(
  template: Template,
  standIn?: Parameters<typeof renderCfnString>[1],
): Map<string, PrintedBucketPolicy> {
  const outputs = template.findOutputs('*', { Description: Match.stringLikeRegexp('imported bucket') });
  const policies = new Map<string, PrintedBucketPolicy>();
  for (const output of Object.values(outputs)) {
    const match = /imported bucket (\S+) \((staging|destination|quarantine)\)/.exec(String(output.Description));
    if (!match?.[1] || !match[2]) throw new Error(`unexpected description: ${String(output.Description)}`);
    const text = renderCfnString(output.Value, standIn);
    policies.set(match[1], { role: match[2], text, statements: JSON.parse(text) as PolicyStatementJson[] });
  }
  return policies;
}

/**
 * Every letter-case spelling of the scan- prefix, written out by hand (not by the code under test):
 * StringLike and S3 tag keys are case-sensitive, so the policies must name each one.
 */
export const SCAN_TAG_KEY_PATTERNS = [
  'scan-*',
  'scaN-*',
  'scAn-*',
  'scAN-*',
  'sCan-*',
  'sCaN-*',
  'sCAn-*',
  'sCAN-*',
  'Scan-*',
  'ScaN-*',
  'ScAn-*',
  'ScAN-*',
  'SCan-*',
  'SCaN-*',
  'SCAn-*',
  'SCAN-*',
];
