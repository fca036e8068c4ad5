import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Whether clamd answers, as far as the worker knows. `checking`: a scan just failed the way a dead clamd
 * fails and a PING is on its way; nothing new should start on clamd until it answers.
 */
export type ClamdHealthState = 'up' | 'checking' | 'down';

export type ClamdHealthChange =
  | { readonly state: 'down'; readonly error: unknown }
  | { readonly state: 'up'; readonly downMs: number };

export interface ClamdHealthOptions {
  /** Resolves when clamd answers PING, rejects otherwise. */
  readonly ping: () => Promise<void>;
  /** While up: PING this often anyway, so an idle worker notices a clamd that stopped answering before it takes jobs. */
  readonly checkIntervalMs: number;
  /** While down: PING this often until clamd answers. */
  readonly retryIntervalMs: number;
  /** A PING that takes longer counts as failed: a hung clamd may accept connections and never answer. */
  readonly pingTimeoutMs: number;
  /** Each up → down and down → up transition; not a failed scan that the next PING contradicts. */
  readonly onChange?: (change: ClamdHealthChange) => void;
}

export interface ClamdHealth {
  state(): ClamdHealthState;
  /**
   * A scan failed as if clamd were gone (refused, reset, no reply). Until a PING sent after this report
   * answers, clamd is not up. A single broken connection thus costs one PING, not the worker's job intake.
   */
  reportFailure(): void;
  /** Resolves once clamd is up (at once if it is); rejects with the signal's reason if it aborts first. */
  whenUp(signal?: AbortSignal): Promise<void>;
  /** Stops pinging and rejects waiters. Idempotent. */
  close(): void;
}

class ClamdHealthClosedError extends Error {
  constructor() {
    super('clamd health monitor closed');
    this.name = 'ClamdHealthClosedError';
  }
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
}

/**
 * The worker's view of clamd: up until a PING fails, then down until one answers. One monitor loop sends
 * every PING (never two at once): every `checkIntervalMs` while up, at once after a failure report, every
 * `retryIntervalMs` while down. Starts up: the worker creates it after clamd first answered.
 */
export function createClamdHealth(options: ClamdHealthOptions): ClamdHealth {
  let state: ClamdHealthState = 'up';
  let downSince = 0;
  /** Failure reports so far; a PING vouches for clamd only if none arrived while it was out. */
  let reports = 0;
  let closed = false;
  /** Ends the monitor's wait between PINGs early (a failure report, close). */
  let wake = new AbortController();
  /** The PING timeout running now; close() ends it, so a hung clamd does not keep the process alive. */
  let pingTimeout: AbortController | undefined;
  const waiters = new Set<Waiter>();

  const notify = (change: ClamdHealthChange): void => {
    try {
      options.onChange?.(change);
    } catch {
      // A failing listener must not stop the monitor: the gate is what keeps jobs off a dead clamd.
    }
  };

  const ping = async (): Promise<void> => {
    const timeout = new AbortController();
    pingTimeout = timeout;
    const pinged = options.ping();
    try {
      await Promise.race([
        pinged,
        sleep(options.pingTimeoutMs, undefined, { signal: timeout.signal }).then(() => {
          throw new Error(`clamd did not answer PING within ${options.pingTimeoutMs} ms`);
        }),
      ]);
    } finally {
      timeout.abort();
      // A PING that lost the race settles later; its outcome no longer matters.
      pinged.catch(() => undefined);
    }
  };

  const becomeUp = (): void => {
    const was = state;
    state = 'up';
    if (was === 'down') notify({ state: 'up', downMs: Date.now() - downSince });
    for (const waiter of waiters) waiter.resolve();
    waiters.clear();
  };

  const becomeDown = (error: unknown): void => {
    if (state === 'down') return;
    state = 'down';
    downSince = Date.now();
    notify({ state: 'down', error });
  };

  const monitor = async (): Promise<void> => {
    while (!closed) {
      const delay = state === 'up' ? options.checkIntervalMs : state === 'down' ? options.retryIntervalMs : 0;
      if (delay > 0) {
        // A fresh controller per wait: a report that arrived during the last PING is already in `state`.
        wake = new AbortController();
        await sleep(delay, undefined, { signal: wake.signal }).catch(() => undefined);
        if (closed) return;
      }
      const reportsBefore = reports;
      try {
        await ping();
        if (closed) return;
        // A scan failed while this PING was out: the answer may predate the failure, so ask again.
        if (reports === reportsBefore) becomeUp();
      } catch (error) {
        if (closed) return;
        becomeDown(error);
      }
    }
  };
  void monitor();

  return {
    state: () => state,

    reportFailure() {
      reports += 1;
      if (state === 'up') {
        state = 'checking';
        wake.abort();
      }
    },

    whenUp(signal) {
      if (state === 'up') return Promise.resolve();
      if (closed) return Promise.reject(new ClamdHealthClosedError());
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          waiters.delete(waiter);
          reject(signal?.reason);
        };
        const waiter: Waiter = {
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          reject: (reason) => {
            signal?.removeEventListener('abort', onAbort);
            reject(reason);
          },
        };
        waiters.add(waiter);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },

    close() {
      if (closed) return;
      closed = true;
      wake.abort();
      pingTimeout?.abort();
      for (const waiter of waiters) waiter.reject(new ClamdHealthClosedError());
      waiters.clear();
    },
  };
}
