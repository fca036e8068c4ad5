/**
 * Errors are the contract with the state machine: each class name is exactly what the worker sends with
 * SendTaskFailure and what statemachines/scan-object.asl.json names in ErrorEquals. A test fails if the
 * ASL names an error that is not exported here.
 */

/** The exact object version is gone (deleted, or replaced in an unversioned bucket). Ends as a no-op. */
export class ObjectNotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ObjectNotFoundError';
  }
}

/** The pipeline may not read the object (bucket policy, KMS key policy). Retrying does not help. */
export class AccessDeniedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AccessDeniedError';
  }
}

/** clamd could not be reached or answered ERROR, after the worker's own retries. Worth another worker's try. */
export class ScannerUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ScannerUnavailableError';
  }
}

/** S3 kept failing while the object was read (5xx, throttling, broken downloads), after the worker's retries. */
export class ObjectReadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ObjectReadError';
  }
}

/** A scan-jobs message that does not match the schema. Retrying the same message cannot help. */
export class InvalidScanJobError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidScanJobError';
  }
}

/**
 * The job was taken by as many workers as a job may be (MAX_JOB_DELIVERIES, functions/commons/scan-execution.ts)
 * and none of them finished it: each died, was killed or lost its hold on the message. The next worker fails
 * the task with this instead of scanning, so a job that takes its worker down every time ends promptly as
 * Error. Not retried: a retry would take more workers down.
 */
export class WorkerLostError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WorkerLostError';
  }
}

/** A bad configuration value, named with the variable and what it accepts. Fails the process at start. */
export class ConfigurationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigurationError';
  }
}

/** Names the worker may send with SendTaskFailure. */
export const TASK_FAILURE_ERRORS = [
  ObjectNotFoundError,
  AccessDeniedError,
  ScannerUnavailableError,
  ObjectReadError,
  InvalidScanJobError,
  WorkerLostError,
] as const;
