import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import type { CommandContext, CommandResult, CommonOptions, RunTargeted } from './command.js';
import { registerExecutions } from './commands/executions.js';
import { registerStatus } from './commands/status.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { clientsFor, resolveTarget, type Target } from './target.js';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);

/**
 * An error from talking to AWS (or the local endpoint): the service answered with an error, or could not be
 * reached, or there were no credentials. These mean the target cannot be used as asked: exit 3.
 */
export function isAwsFailure(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return (
    '$metadata' in error ||
    '$fault' in error ||
    (code !== undefined && NETWORK_ERROR_CODES.has(code)) ||
    ['CredentialsProviderError', 'TokenProviderError', 'TimeoutError'].includes(error.name)
  );
}

function explainAwsFailure(error: Error, target: Target | undefined): string {
  const code = (error as NodeJS.ErrnoException).code;
  const what = `${error.name !== 'Error' ? `${error.name}: ` : ''}${error.message || code || 'unknown error'}`;
  if (target?.connection.kind === 'local') {
    const down = code !== undefined && NETWORK_ERROR_CODES.has(code);
    return down
      ? `cannot reach the local pipeline at ${target.connection.endpoint} (${what}). Is \`npm start -- --watch\` still running? ${target.connection.layoutFile} may be left from an earlier run.`
      : `the local pipeline at ${target.connection.endpoint} refused: ${what}`;
  }
  const where = target ? `stack ${target.name} in ${target.region}` : 'AWS';
  return `cannot use ${where}: ${what}`;
}

/** Runs the `scanflow` command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo, now = new Date()): Promise<number> {
  let exitCode: ExitCode = EXIT.ok;
  let target: Target | undefined;

  const run: RunTargeted = async (options: CommonOptions, work) => {
    target = await resolveTarget(options);
    const context: CommandContext = { target, clients: clientsFor(target), now };
    const result: CommandResult = await work(context);
    io.stdout(options.json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.human}\n`);
    exitCode = result.exitCode;
  };

  const program = new Command()
    .name('scanflow')
    .description(
      "Inspect a scanflow pipeline: an object's verdict and where it is, and the scan-object executions.\n" +
        'Every command takes a target: --local (a running `npm start -- --watch`) or --stack <name>.',
    )
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(scanflow --help, or scanflow <command> --help, lists the options)');
  registerStatus(program, run, now);
  registerExecutions(program, run, now);
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok (status: Clean), 1 status: not Clean (Infected, Unscannable, Error), 2 usage error,\n' +
      '3 target not found or not reachable, 4 status: object not found, 5 status: no verdict yet, 70 internal error.',
  );

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof CliError) {
      io.stderr(`scanflow: ${error.message}\n`);
      return error.exitCode;
    }
    if (isAwsFailure(error)) {
      io.stderr(`scanflow: ${explainAwsFailure(error, target)}\n`);
      return EXIT.unreachable;
    }
    io.stderr(`scanflow: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.internal;
  }
}

function packageVersion(): string {
  const file = join(import.meta.dirname, '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
