import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudFormationClient,
  CloudFormationServiceException,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { CliError, EXIT } from '../../../cli/exit-codes.js';
import {
  executionConsoleUrl,
  readLocalTarget,
  resolveTarget,
  STACK_OUTPUT_KEYS,
  type Target,
  targetFromLayout,
  targetFromStackOutputs,
} from '../../../cli/target.js';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ScanObject1A2B3C';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Scanflow-ResultsTopic';

/** DescribeStacks outputs as the deployed ScanflowStack has them (infra/lib/scanflow-stack.ts). */
const stackOutputs = [
  { OutputKey: 'ProtectedBucket0', OutputValue: 'scanflow-staging-abc' },
  { OutputKey: 'DestinationBucketName', OutputValue: 'scanflow-destination-def' },
  { OutputKey: 'QuarantineBucketName', OutputValue: 'scanflow-quarantine-ghi' },
  { OutputKey: 'ResultsTopicArn', OutputValue: TOPIC },
  { OutputKey: 'StateMachineArn', OutputValue: STATE_MACHINE },
  { OutputKey: 'DashboardUrl', OutputValue: 'https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#…' },
];

/** The error, thrown synchronously or as a rejection. */
async function failure(work: () => unknown): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

async function cliFailure(work: () => unknown): Promise<CliError> {
  const error = await failure(work);
  expect(error).toBeInstanceOf(CliError);
  return error as CliError;
}

describe('--stack: CloudFormation outputs → target', () => {
  it('maps each output the stack declares to its place in the target; region and partition come from the state machine', () => {
    const expected: Target = {
      kind: 'stack',
      name: 'Scanflow',
      region: 'eu-west-1',
      partition: 'aws',
      buckets: {
        staging: ['scanflow-staging-abc'],
        destination: 'scanflow-destination-def',
        quarantine: 'scanflow-quarantine-ghi',
      },
      stateMachineArn: STATE_MACHINE,
      resultsTopicArn: TOPIC,
      connection: { kind: 'aws' },
    };
    expect(targetFromStackOutputs('Scanflow', stackOutputs)).toEqual(expected);
  });

  it('takes every protected bucket as a staging bucket, in output order (ProtectedBucket10 after ProtectedBucket2)', () => {
    const outputs = [
      ...stackOutputs.filter((o) => o.OutputKey !== 'ProtectedBucket0'),
      { OutputKey: 'ProtectedBucket10', OutputValue: 'ten' },
      { OutputKey: 'ProtectedBucket2', OutputValue: 'two' },
      { OutputKey: 'ProtectedBucket0', OutputValue: 'zero' },
      { OutputKey: 'ProtectedBucket1', OutputValue: 'one' },
      // Imported buckets publish policy statements under a similar name: not buckets to scan.
      { OutputKey: 'PipelineImportedBucketPolicy0ABCD', OutputValue: '{"Statement":[]}' },
    ];
    expect(targetFromStackOutputs('Scanflow', outputs).buckets.staging).toEqual(['zero', 'one', 'two', 'ten']);
  });

  it('names every output it needs and did not find, and exits 3 (not a scanflow stack)', async () => {
    const error = await cliFailure(() =>
      targetFromStackOutputs(
        'Other',
        stackOutputs.filter((o) => !['ProtectedBucket0', 'StateMachineArn'].includes(o.OutputKey)),
      ),
    );
    expect(error.exitCode).toBe(EXIT.unreachable);
    expect(error.message).toContain('stack Other is not a scanflow stack');
    expect(error.message).toContain('ProtectedBucket0');
    expect(error.message).toContain(STACK_OUTPUT_KEYS.stateMachine);
    expect(error.message).not.toContain(STACK_OUTPUT_KEYS.destination);
  });

  it('refuses a StateMachineArn output that is not a state machine ARN', async () => {
    const outputs = stackOutputs.map((o) =>
      o.OutputKey === 'StateMachineArn' ? { ...o, OutputValue: 'arn:aws:sns:eu-west-1:123456789012:topic' } : o,
    );
    expect((await cliFailure(() => targetFromStackOutputs('Scanflow', outputs))).message).toContain(
      'is not a state machine ARN',
    );
  });

  it('keeps the partition of a China or GovCloud stack, so its console links go to that console', () => {
    const cn = targetFromStackOutputs(
      'Scanflow',
      stackOutputs.map((o) =>
        o.OutputKey === 'StateMachineArn'
          ? { ...o, OutputValue: 'arn:aws-cn:states:cn-north-1:123456789012:stateMachine:ScanObject' }
          : o,
      ),
    );
    expect(cn).toMatchObject({ region: 'cn-north-1', partition: 'aws-cn' });
    expect(executionConsoleUrl(cn, 'arn:aws-cn:states:cn-north-1:123456789012:execution:ScanObject:x')).toBe(
      'https://cn-north-1.console.amazonaws.cn/states/home?region=cn-north-1#/v2/executions/details/arn:aws-cn:states:cn-north-1:123456789012:execution:ScanObject:x',
    );
  });
});

describe('--stack: reading the stack', () => {
  const cloudFormation = mockClient(CloudFormationClient);
  beforeEach(() => {
    cloudFormation.reset();
  });

  it('reads the named stack once and builds the target from its outputs, with the profile asked for', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Scanflow',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(0),
          Outputs: stackOutputs,
        },
      ],
    });
    const target = await resolveTarget(
      { stack: 'Scanflow', profile: 'ops' },
      { cloudFormation: new CloudFormationClient({ region: 'eu-west-1' }) },
    );
    expect(cloudFormation.commandCalls(DescribeStacksCommand).map((call) => call.args[0].input)).toEqual([
      { StackName: 'Scanflow' },
    ]);
    expect(target).toMatchObject({
      kind: 'stack',
      name: 'Scanflow',
      stateMachineArn: STATE_MACHINE,
      connection: { kind: 'aws', profile: 'ops' },
    });
    expect(executionConsoleUrl(target, `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:doc-pdf-1234`)).toBe(
      'https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:ScanObject1A2B3C:doc-pdf-1234',
    );
  });

  it('says there is no such stack in the region (exit 3) when CloudFormation does not know it', async () => {
    cloudFormation.on(DescribeStacksCommand).rejects(
      new CloudFormationServiceException({
        name: 'ValidationError',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'Stack with id Nope does not exist',
      }),
    );
    const error = await cliFailure(() =>
      resolveTarget({ stack: 'Nope' }, { cloudFormation: new CloudFormationClient({ region: 'ap-south-1' }) }),
    );
    expect(error.exitCode).toBe(EXIT.unreachable);
    expect(error.message).toBe('no stack Nope in ap-south-1 (pass --region, or set AWS_REGION / AWS_PROFILE)');
  });

  it('without a region anywhere, says how to give one (exit 2) and asks CloudFormation nothing', async () => {
    const noRegion = new CloudFormationClient({
      region: async () => {
        throw new Error('Region is missing');
      },
    });
    const error = await cliFailure(() => resolveTarget({ stack: 'Scanflow' }, { cloudFormation: noRegion }));
    expect(error.exitCode).toBe(EXIT.usage);
    expect(error.message).toBe(
      'no AWS region for --stack: pass --region, or set AWS_REGION or a region in your AWS profile',
    );
    expect(cloudFormation.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });

  it('lets other AWS failures (credentials, access denied) through for the caller to report', async () => {
    const denied = new CloudFormationServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'not authorized to perform: cloudformation:DescribeStacks',
    });
    cloudFormation.on(DescribeStacksCommand).rejects(denied);
    const error = await failure(() =>
      resolveTarget({ stack: 'Scanflow' }, { cloudFormation: new CloudFormationClient({ region: 'eu-west-1' }) }),
    );
    expect(error).toBe(denied);
  });
});

describe('choosing the target', () => {
  it.each([
    [{}, 'say which pipeline'],
    [{ local: true, stack: 'Scanflow' }, 'not both'],
    [{ layout: 'x.json', stack: 'Scanflow' }, 'not both'],
    [{ local: true, region: 'eu-west-1' }, '--region and --profile are for --stack'],
  ])('%j is a usage error (exit 2)', async (options, message) => {
    const error = await cliFailure(() => resolveTarget(options));
    expect(error.exitCode).toBe(EXIT.usage);
    expect(error.message).toContain(message);
  });
});

describe('--local: the layout file of `npm start -- --watch`', () => {
  const layout = {
    endpoint: 'http://127.0.0.1:40123',
    region: 'us-east-1',
    buckets: { staging: 'l-staging', destination: 'l-destination', quarantine: 'l-quarantine' },
    queues: { scanJobs: 'http://127.0.0.1:40123/123456789012/l-scan-jobs' },
    resultsTopicArn: 'arn:aws:sns:us-east-1:123456789012:l-results',
    stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:l-scan-object',
    clamd: 'unix socket …',
    credentials: { AWS_ACCESS_KEY_ID: 'local-id', AWS_SECRET_ACCESS_KEY: 'local-secret' },
  };

  it('reads endpoint, region, buckets, state machine and credentials; executions get no console link', () => {
    const target = targetFromLayout(layout, 'layout.json');
    const expected: Target = {
      kind: 'local',
      name: 'local',
      region: 'us-east-1',
      partition: 'aws',
      buckets: { staging: ['l-staging'], destination: 'l-destination', quarantine: 'l-quarantine' },
      stateMachineArn: layout.stateMachineArn,
      resultsTopicArn: layout.resultsTopicArn,
      connection: {
        kind: 'local',
        endpoint: 'http://127.0.0.1:40123',
        credentials: { accessKeyId: 'local-id', secretAccessKey: 'local-secret' },
        layoutFile: 'layout.json',
      },
    };
    expect(target).toEqual(expected);
    expect(executionConsoleUrl(target, 'arn:aws:states:us-east-1:123456789012:execution:l-scan-object:x')).toBe(
      undefined,
    );
  });

  it('names what is missing or wrong in a file that is not a layout (exit 3)', async () => {
    const { endpoint: _endpoint, ...noEndpoint } = layout;
    const error = await cliFailure(() =>
      targetFromLayout({ ...noEndpoint, buckets: { ...layout.buckets, quarantine: 7 } }, 'old.json'),
    );
    expect(error.exitCode).toBe(EXIT.unreachable);
    expect(error.message).toMatch(/^old\.json is not a scanflow local layout \(.*endpoint.*buckets\.quarantine/);
  });

  it('a missing file says how to start the local pipeline; a file that is not JSON says so (exit 3)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scanflow-cli-'));
    const missing = await cliFailure(() => readLocalTarget(join(dir, 'local.json')));
    expect(missing.exitCode).toBe(EXIT.unreachable);
    expect(missing.message).toContain('does not exist. Start one with `npm start -- --watch`');
    writeFileSync(join(dir, 'broken.json'), '{ "endpoint": ');
    expect((await cliFailure(() => readLocalTarget(join(dir, 'broken.json')))).message).toBe(
      `${join(dir, 'broken.json')} is not JSON`,
    );
  });
});
