import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { pipelinePropsFromConfig, readScanflowConfig } from '../../infra/lib/config.js';
import { REPO_ROOT } from '../../infra/lib/scan-pipeline.js';
import { ScanflowStack } from '../../infra/lib/scanflow-stack.js';
import { cdkJsonContext } from './synth.js';

interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

test('`cdk synth` runs the app from cdk.json offline, with cdk-nag, in well under a minute', async () => {
  const out = mkdtempSync(join(tmpdir(), 'scanflow-synth-'));
  try {
    const started = Date.now();
    const { stdout, stderr } = await promisify(execFile)(
      'npx',
      ['cdk', 'synth', '--quiet', '--output', out, '--no-notices', '--no-version-reporting', '--no-lookups'],
      {
        cwd: REPO_ROOT,
        // No credentials: any AWS call would fail synth rather than quietly succeed.
        env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_EC2_METADATA_DISABLED: 'true' },
        timeout: 90_000,
      },
    );
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(`${stdout}${stderr}`).not.toContain('AwsSolutions-');
    const template = JSON.parse(readFileSync(join(out, 'Scanflow.template.json'), 'utf8')) as TemplateJson;
    const types = new Set(Object.values(template.Resources).map((r) => r.Type));
    for (const type of [
      'AWS::StepFunctions::StateMachine',
      'AWS::ECS::Service',
      'AWS::Lambda::Function',
      'AWS::Events::Rule',
    ]) {
      expect(types).toContain(type);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);

test('an explicit account and region synthesize with the zones from cdk.json and no missing context', () => {
  const context = { ...cdkJsonContext(), account: '123456789012', region: 'eu-west-1' };
  const app = new App({ context, outdir: mkdtempSync(join(tmpdir(), 'scanflow-env-')) });
  const config = readScanflowConfig((key) => app.node.tryGetContext(key));
  const stack = new ScanflowStack(app, config.stackName, {
    env: { account: config.account, region: config.region },
    ...(config.availabilityZones ? { availabilityZones: config.availabilityZones } : {}),
    pipeline: (s) => pipelinePropsFromConfig(s, config),
  });
  const assembly = app.synth();
  try {
    // A lookup CDK would have to make against AWS shows up as missing context.
    expect(assembly.manifest.missing ?? []).toEqual([]);
    const template = assembly.getStackByName(stack.stackName).template as TemplateJson;
    const subnetZones = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::EC2::Subnet')
      .map((r) => r.Properties?.AvailabilityZone);
    expect(new Set(subnetZones)).toEqual(new Set(['eu-west-1a', 'eu-west-1b']));
  } finally {
    rmSync(assembly.directory, { recursive: true, force: true });
  }
});

test('an environment-agnostic stack lets CloudFormation pick the zones', () => {
  const app = new App({ context: cdkJsonContext(), outdir: mkdtempSync(join(tmpdir(), 'scanflow-agnostic-')) });
  const stack = new ScanflowStack(app, 'Scanflow');
  const assembly = app.synth();
  try {
    expect(assembly.manifest.missing ?? []).toEqual([]);
    const template = assembly.getStackByName(stack.stackName).template as TemplateJson;
    const zones = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::EC2::Subnet')
      .map((r) => JSON.stringify(r.Properties?.AvailabilityZone));
    for (const zone of zones) expect(zone).toContain('Fn::GetAZs');
  } finally {
    rmSync(assembly.directory, { recursive: true, force: true });
  }
});
