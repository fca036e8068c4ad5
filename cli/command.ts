import { type Command, Option } from 'commander';
import type { ExitCode } from './exit-codes.js';
import type { Target, TargetClients, TargetOptions } from './target.js';

/** What a command hands back: its exit code and its report, as JSON (`--json`) and as text. */
export interface CommandResult {
  readonly exitCode: ExitCode;
  readonly json: unknown;
  readonly human: string;
}

/** What every command works against: one resolved target, its clients, and one `now` for the whole run. */
export interface CommandContext {
  readonly target: Target;
  readonly clients: TargetClients;
  readonly now: Date;
}

export interface CommonOptions extends TargetOptions {
  readonly json?: boolean;
}

/** Resolves the target from the command's options, runs `work` against it, prints the result, exits. */
export type RunTargeted = (
  options: CommonOptions,
  work: (context: CommandContext) => Promise<CommandResult>,
) => Promise<void>;

/** The options every command that talks to a pipeline takes. */
export function addTargetOptions(command: Command): Command {
  return command
    .addOption(new Option('--local', 'the local pipeline of a running `npm start -- --watch`'))
    .addOption(
      new Option('--layout <file>', 'the local layout file to read (implies --local)').default(
        undefined,
        '.scanflow/local.json in the project',
      ),
    )
    .addOption(new Option('--stack <name>', 'a deployed stack, read with your AWS credentials'))
    .addOption(new Option('--region <region>', "the stack's region (default: AWS_REGION / your profile's)"))
    .addOption(new Option('--profile <name>', 'the AWS profile to use (default: AWS_PROFILE / the default chain)'))
    .addOption(new Option('--json', 'print the report as JSON (for scripts) instead of text'));
}
