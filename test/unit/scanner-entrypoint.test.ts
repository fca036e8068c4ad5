import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { PROJECT_ROOT } from '../../local/runtime/moto.js';
import { waitFor } from '../../local/runtime/processes.js';

jest.setTimeout(30_000);

const ENTRYPOINT = join(PROJECT_ROOT, 'scanner-image', 'entrypoint.sh');
const STUB_PROGRAM = join(PROJECT_ROOT, 'test', 'support', 'entrypoint-stub.mjs');
type Role = 'clamd' | 'freshclam' | 'worker';

/**
 * Runs the image's entrypoint for real, with clamd, freshclam and `node` (the worker) replaced by stubs on
 * PATH: what it starts, in which order it stops things and with which status it exits, without Docker.
 * TMPDIR keeps its generated freshclam.conf out of /tmp.
 */
interface Run {
  readonly dir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pid(role: Role): number;
  events(): string[];
}

function startEntrypoint(): Run {
  const dir = mkdtempSync(join(tmpdir(), 'scanflow-entrypoint-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const [command, role] of [
    ['clamd', 'clamd'],
    ['freshclam', 'freshclam'],
    ['node', 'worker'],
  ] as const) {
    const path = join(bin, command);
    writeFileSync(path, `#!/bin/sh\nexec "$STUB_NODE" "$STUB_PROGRAM" ${role} "$@"\n`);
    chmodSync(path, 0o755);
  }
  const child = spawn('bash', [ENTRYPOINT], {
    env: {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      TMPDIR: dir,
      STUB_DIR: dir,
      STUB_NODE: process.execPath,
      STUB_PROGRAM,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    dir,
    child,
    exited,
    pid: (role) => Number(readFileSync(join(dir, `${role}.pid`), 'utf8')),
    events: () =>
      existsSync(join(dir, 'events')) ? readFileSync(join(dir, 'events'), 'utf8').split('\n').filter(Boolean) : [],
  };
}

/** Until every stub has its handlers installed (it writes its PID file after that). */
async function started(run: Run): Promise<void> {
  await waitFor(
    'clamd, freshclam and the worker stubs to start',
    async () => ['clamd', 'freshclam', 'worker'].every((role) => existsSync(join(run.dir, `${role}.pid`))),
    20_000,
    20,
  );
}

/** Stubs the entrypoint signalled without waiting for them record their event a moment later. */
async function recorded(run: Run, events: readonly string[]): Promise<void> {
  await waitFor(`events ${events.join(', ')}`, async () => events.every((e) => run.events().includes(e)), 10_000, 20);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('scanner-image/entrypoint.sh', () => {
  let run: Run | undefined;

  beforeEach(() => {
    run = undefined;
  });

  afterEach(() => {
    if (!run) return;
    // Only what this test started: the entrypoint and its stubs, by PID.
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    for (const role of ['clamd', 'freshclam', 'worker'] as const) {
      if (!existsSync(join(run.dir, `${role}.pid`))) continue;
      const pid = run.pid(role);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(run.dir, { recursive: true, force: true });
  });

  it('is valid bash', () => {
    expect(() => execFileSync('bash', ['-n', ENTRYPOINT])).not.toThrow();
  });

  it('SIGTERM stops the worker first, while clamd still runs for its in-flight scans, then clamd; exits 0', async () => {
    run = startEntrypoint();
    await started(run);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    const events = run.events();
    expect(events.indexOf('worker TERM clamd-alive=true')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('clamd TERM')).toBeGreaterThan(events.indexOf('worker TERM clamd-alive=true'));
    await recorded(run, ['freshclam TERM']);
  });

  it('clamd killed: the worker is stopped and the entrypoint exits non-zero, so ECS replaces the task', async () => {
    run = startEntrypoint();
    await started(run);
    process.kill(run.pid('clamd'), 'SIGKILL');
    // bash reports a process killed by signal 9 as 128 + 9.
    expect(await run.exited).toEqual({ code: 137, signal: null });
    expect(run.events()).toContain('worker TERM clamd-alive=false');
    await recorded(run, ['freshclam TERM']);
    expect(alive(run.pid('worker'))).toBe(false);
  });

  it('clamd exiting 0 still ends the task with a failure status', async () => {
    run = startEntrypoint();
    await started(run);
    process.kill(run.pid('clamd'), 'SIGTERM');
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.events()).toEqual(expect.arrayContaining(['clamd TERM', 'worker TERM clamd-alive=false']));
  });

  it('the worker exiting on its own stops clamd and freshclam and passes on its status', async () => {
    run = startEntrypoint();
    await started(run);
    process.kill(run.pid('worker'), 'SIGUSR1');
    expect(await run.exited).toEqual({ code: 3, signal: null });
    // The entrypoint does not wait for them (a clamd that hangs on TERM must not keep the task alive).
    await recorded(run, ['worker crash', 'clamd TERM', 'freshclam TERM']);
  });

  it('a freshclam that dies does not end the task: scans stay correct with older signatures', async () => {
    run = startEntrypoint();
    await started(run);
    const freshclam = run.pid('freshclam');
    process.kill(freshclam, 'SIGKILL');
    await waitFor('freshclam to be gone', async () => !alive(freshclam), 10_000, 20);
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });
});
