/**
 * What `scanflow` exits with. Scripts branch on these, so each means one thing (README "The `scanflow`
 * command" documents them). `status` answers a question about one object: 0 only when its upload is Clean.
 */
export const EXIT = {
  /** The command did what was asked; for `status`: the object's upload is Clean. */
  ok: 0,
  /** `status`: the upload has a verdict other than Clean (Infected, Unscannable, Error). */
  notClean: 1,
  /** Bad arguments or options: nothing was asked of the target. */
  usage: 2,
  /** The target cannot be resolved or reached: no layout file, no such stack, no credentials, refused, down. */
  unreachable: 3,
  /** `status`: the pipeline has no trace of the object (no version in its buckets, no execution). */
  notFound: 4,
  /** `status`: the upload has no verdict yet (its scan is running, or has not started). */
  noVerdict: 5,
  /** A bug in scanflow itself; the message says what failed. */
  internal: 70,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the command explains itself: the message is for the user, the exit code for scripts. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);
export const unreachable = (message: string) => new CliError(message, EXIT.unreachable);
