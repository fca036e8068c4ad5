/**
 * How hard start-scan tries before a scan request goes back to its queue, and how often the queue hands it
 * out before the dead-letter queue. The deployment (infra/lib/scan-pipeline.ts) and the local run
 * (local/runtime/provision.ts) both read these, so they cannot drift apart.
 *
 * The numbers hang together with the function's 30 s timeout (infra/lib/pipeline-function.ts) and
 * scan-requests' 3 min visibility:
 * - StartExecution tries: the SDK backs off from a throttle by a random share of 1, 2, 4 and 8 s
 *   (@smithy/core retry, throttling base 1 s), at most 15 s over five tries. That leaves half the timeout
 *   for HeadObject, GetObjectTagging and the calls themselves. A sixth try could wait 16 s more and, with
 *   the adaptive mode's own pacing, outlast the timeout; a record that times out fails the whole batch.
 *   Adaptive mode also slows the client's later calls once it saw a throttle, so the rest of a burst
 *   spreads out instead of failing alike.
 * - Receives: each one is a whole invocation (five tries) followed by the 3 min visibility timeout, so ten
 *   receives carry a record through about half an hour of sustained throttling, Step Functions' or
 *   start-scan's own (a throttled invocation also counts a receive). Past that the record waits in the
 *   scan-requests DLQ (alarmed, kept 14 days) for a redrive (README, Operations).
 */
export const START_EXECUTION_RETRY = { mode: 'adaptive', maxAttempts: 5 } as const;

/** The SDK's backoff after a throttle: a random share of base × 2^retry, capped (@smithy/core retry). */
const THROTTLING_BACKOFF = { baseSeconds: 1, capSeconds: 20 } as const;

/** The longest the SDK can wait between `maxAttempts` tries of one throttled call. */
export function worstThrottlingBackoffSeconds(maxAttempts: number): number {
  let total = 0;
  for (let retry = 0; retry < maxAttempts - 1; retry += 1) {
    total += Math.min(THROTTLING_BACKOFF.baseSeconds * 2 ** retry, THROTTLING_BACKOFF.capSeconds);
  }
  return total;
}

export const SCAN_REQUESTS_MAX_RECEIVE_COUNT = 10;
