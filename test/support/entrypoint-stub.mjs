// Stands in for clamd, freshclam and the worker (`node`) when test/unit/scanner-entrypoint.test.ts runs
// scanner-image/entrypoint.sh without Docker. Usage: node entrypoint-stub.mjs <clamd|freshclam|worker> [args].
// Each long-running stub installs its signal handlers, then writes <role>.pid into STUB_DIR (so a test that
// waits for the PID file knows a signal will be recorded), and appends what happens to STUB_DIR/events.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.STUB_DIR ?? '.';
const [role = 'unknown', ...args] = process.argv.slice(2);
const record = (event) => appendFileSync(join(dir, 'events'), `${role} ${event}\n`);

/** Whether the clamd stub still runs: the worker must be stopped while clamd is still there to drain. */
function clamdAlive() {
  try {
    process.kill(Number(readFileSync(join(dir, 'clamd.pid'), 'utf8')), 0);
    return true;
  } catch {
    return false;
  }
}

if (role === 'freshclam' && !args.includes('--daemon')) {
  // The one-shot signature download before clamd starts.
  record('update');
  process.exit(0);
}

process.on('SIGTERM', () => {
  record(role === 'worker' ? `TERM clamd-alive=${clamdAlive()}` : 'TERM');
  process.exit(0);
});
if (role === 'worker') {
  // The test's way to make the worker exit on its own (a crash).
  process.on('SIGUSR1', () => {
    record('crash');
    process.exit(3);
  });
}
setInterval(() => undefined, 1 << 30);
writeFileSync(join(dir, `${role}.pid`), String(process.pid));
