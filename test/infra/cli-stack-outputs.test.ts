import type { Template } from 'aws-cdk-lib/assertions';
import { targetFromStackOutputs } from '../../cli/target.js';
import { type Synthesized, synthScanflow } from './synth.js';

/**
 * `scanflow --stack` builds its target from the stack's outputs (cli/target.ts). These tests "deploy" the
 * synthesized outputs (each Ref becomes a made-up physical name) and check that the CLI's target names
 * exactly the buckets the pipeline scans and moves objects to, and the state machine and topic it uses: an
 * output renamed or pointed elsewhere breaks `--stack` here, not in a user's terminal.
 */
const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  Outputs: Record<string, { Value: unknown }>;
}

/** What CloudFormation would put in place of a value: a Ref's physical id or ARN, a literal as is. */
function deployedValue(template: TemplateJson, value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const ref = typeof value === 'object' && value !== null ? (value as { Ref?: unknown }).Ref : undefined;
  if (typeof ref !== 'string') return undefined; // joins (the dashboard URL): not needed by the CLI
  const type = template.Resources[ref]?.Type;
  if (type === 'AWS::StepFunctions::StateMachine') return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${ref}`;
  if (type === 'AWS::SNS::Topic') return `arn:aws:sns:${REGION}:${ACCOUNT}:${ref}`;
  return `physical-${ref}`.toLowerCase();
}

function deploy(synthesized: Synthesized) {
  const template = synthesized.template.toJSON() as TemplateJson;
  const outputs = Object.entries(template.Outputs).flatMap(([OutputKey, output]) => {
    const OutputValue = deployedValue(template, output.Value);
    return OutputValue === undefined ? [] : [{ OutputKey, OutputValue }];
  });
  return { template, target: targetFromStackOutputs('Scanflow', outputs) };
}

/** The buckets, state machine and topic the deployed pipeline really uses, read from its resources. */
function pipelineWiring(template: TemplateJson, assertions: Template) {
  const [[stateMachineId, stateMachine] = []] = Object.entries(
    assertions.findResources('AWS::StepFunctions::StateMachine'),
  );
  const substitutions = (stateMachine as { Properties: { DefinitionSubstitutions: Record<string, unknown> } })
    .Properties.DefinitionSubstitutions;
  const [rule] = Object.values(assertions.findResources('AWS::Events::Rule'));
  const scanned = (rule as { Properties: { EventPattern: { detail: { bucket: { name: unknown[] } } } } }).Properties
    .EventPattern.detail.bucket.name;
  return {
    staging: scanned.map((name) => deployedValue(template, name)),
    destination: deployedValue(template, substitutions.DestinationBucket),
    quarantine: deployedValue(template, substitutions.QuarantineBucket),
    resultsTopicArn: deployedValue(template, substitutions.ResultsTopicArn),
    stateMachineArn: deployedValue(template, { Ref: stateMachineId }),
  };
}

test('the default stack: the target names the staging bucket the rule watches and the buckets the state machine moves to', () => {
  const synthesized = synthScanflow({}, { prebuiltImage: true });
  const { template, target } = deploy(synthesized);
  const wiring = pipelineWiring(template, synthesized.template);
  expect(wiring.staging).toHaveLength(1);
  expect(target).toMatchObject({ kind: 'stack', name: 'Scanflow', region: REGION, partition: 'aws' });
  expect({
    ...target.buckets,
    resultsTopicArn: target.resultsTopicArn,
    stateMachineArn: target.stateMachineArn,
  }).toEqual(wiring);
});

test('imported buckets: every protected bucket is a staging bucket of the target, in order', () => {
  const synthesized = synthScanflow(
    {
      existingProtectedBucketNames: ['partner-uploads', 'sftp-landing', 'scanner-inbox'],
      existingDestinationBucketName: 'clean-files',
      existingQuarantineBucketName: 'quarantined-files',
    },
    { prebuiltImage: true },
  );
  const { template, target } = deploy(synthesized);
  expect(target.buckets).toEqual({
    staging: ['partner-uploads', 'sftp-landing', 'scanner-inbox'],
    destination: 'clean-files',
    quarantine: 'quarantined-files',
  });
  expect(target.buckets).toEqual({
    staging: pipelineWiring(template, synthesized.template).staging,
    destination: pipelineWiring(template, synthesized.template).destination,
    quarantine: pipelineWiring(template, synthesized.template).quarantine,
  });
});
