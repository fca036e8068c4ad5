import { describe, expect, it } from '@jest/globals';
import { EXIT } from '../../../cli/exit-codes.js';
import { isAwsFailure, main } from '../../../cli/main.js';

/** Runs the command line in this process; only for what fails before any AWS call. */
async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'scanflow', ...args], {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

describe('usage errors exit 2 before anything is asked of a target', () => {
  it.each([
    [[], 'Usage: scanflow'],
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['status'], "missing required argument 's3-url'"],
    [['status', 'staging/key', '--local'], 'expected s3://bucket/key'],
    [
      ['executions', '--local', '--status', 'DONE'],
      'Allowed choices are RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED',
    ],
    [['executions', '--local', '--since', 'last week'], 'expected an age like 30m'],
    [['executions', '--local', '--limit', '0'], 'expected a whole number > 0'],
    [['executions'], 'say which pipeline: --local'],
    [['executions', '--local', '--stack', 'Scanflow'], 'not both'],
  ])('scanflow %j', async (args, message) => {
    const { code, stdout, stderr } = await run(...args);
    expect({ code, stdout }).toEqual({ code: EXIT.usage, stdout: '' });
    expect(stderr).toContain(message);
  });
});

describe('help and version exit 0', () => {
  it('--help lists the commands and the exit codes', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(EXIT.ok);
    expect(stdout).toMatch(/^ {2}status \[options\] <s3-url>/m);
    expect(stdout).toMatch(/^ {2}executions \[options\]/m);
    expect(stdout).toContain('Exit codes: 0 ok (status: Clean), 1 status: not Clean');
  });

  it('each command’s --help lists the target options', async () => {
    const { code, stdout } = await run('status', '--help');
    expect(code).toBe(EXIT.ok);
    for (const option of [
      '--local',
      '--layout <file>',
      '--stack <name>',
      '--region',
      '--profile',
      '--json',
      '--version-id',
    ]) {
      expect(stdout).toContain(option);
    }
  });
});

it('a missing layout file is an unreachable target (exit 3) that says how to start one', async () => {
  const { code, stderr } = await run('executions', '--layout', '/nonexistent/local.json');
  expect(code).toBe(EXIT.unreachable);
  expect(stderr).toBe(
    'scanflow: no local pipeline: /nonexistent/local.json does not exist. Start one with `npm start -- --watch` (it writes that file), or pass --layout <file>.\n',
  );
});

describe('which failures mean the target cannot be used (exit 3)', () => {
  const withCode = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code });
  const named = (name: string, extra: object = {}) => Object.assign(new Error('x'), { name }, extra);

  it.each([
    ['connection refused', withCode('ECONNREFUSED')],
    ['DNS failure', withCode('ENOTFOUND')],
    ['no credentials', named('CredentialsProviderError')],
    ['a service error', named('AccessDenied', { $fault: 'client', $metadata: { httpStatusCode: 403 } })],
  ])('%s', (_what, error) => {
    expect(isAwsFailure(error)).toBe(true);
  });

  it.each([
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a file error', withCode('EACCES')],
    ['not an error', 'text'],
  ])('not %s', (_what, error) => {
    expect(isAwsFailure(error)).toBe(false);
  });
});
