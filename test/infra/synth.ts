import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
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
