/** Human output: times in UTC to the second, durations in the largest two units that matter. */

export function formatTime(date: Date | string | undefined): string {
  if (date === undefined) return '';
  const iso = (typeof date === 'string' ? new Date(date) : date).toISOString();
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, '0')} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} m`;
  const hours = Math.round(minutes / 60);
  return `${Math.floor(hours / 24)} d ${String(hours % 24).padStart(2, '0')} h`;
}

/** A running execution's age so far, marked as such; a finished one's duration. */
export function formatExecutionDuration(
  execution: { readonly startDate: Date; readonly stopDate?: Date },
  now: Date,
): string {
  if (execution.stopDate) return formatDuration(execution.stopDate.getTime() - execution.startDate.getTime());
  return `${formatDuration(now.getTime() - execution.startDate.getTime())} so far`;
}

/** `label  value` lines with the labels padded to one width. */
export function renderFields(fields: readonly (readonly [string, string])[], indent = ''): string {
  const width = Math.max(0, ...fields.map(([label]) => [...label].length));
  return fields
    .map(([label, value]) => `${indent}${label}${' '.repeat(width - [...label].length)}  ${value}`.trimEnd())
    .join('\n');
}
