import type { ScalingInterval } from 'aws-cdk-lib/aws-applicationautoscaling';

/** Step scaling allows few intervals; more than this many capacities are spread evenly up to the maximum. */
const MAX_CAPACITY_STEPS = 12;

/**
 * Exact-capacity steps over the scan-jobs backlog (waiting + in-flight jobs): one worker per
 * `jobsPerWorker` jobs, up to `maxWorkers`, and `minWorkers` (possibly 0) when nothing is waiting or running.
 * In-flight jobs are counted so a busy pool is never scaled in under a running scan just because the queue
 * looks empty. Exact capacity (not change-in-capacity) makes repeated alarm evaluations idempotent.
 */
export function workerScalingSteps(minWorkers: number, maxWorkers: number, jobsPerWorker: number): ScalingInterval[] {
  const capacities = new Set<number>();
  if (maxWorkers <= MAX_CAPACITY_STEPS) {
    for (let c = 1; c <= maxWorkers; c++) capacities.add(c);
  } else {
    for (let i = 1; i <= MAX_CAPACITY_STEPS; i++)
      capacities.add(Math.max(1, Math.round((i * maxWorkers) / MAX_CAPACITY_STEPS)));
  }
  const steps: ScalingInterval[] = [{ upper: 0, change: minWorkers }];
  for (const capacity of [...capacities].sort((a, b) => a - b)) {
    // Backlog above (capacity - 1) workers' worth of jobs needs `capacity` workers.
    steps.push({ lower: (capacity - 1) * jobsPerWorker + 1, change: Math.max(capacity, minWorkers) });
  }
  return steps;
}
