import { afterEach, describe, expect, it } from '@jest/globals';
import {
  type ClamdHealth,
  type ClamdHealthChange,
  type ClamdHealthOptions,
  createClamdHealth,
} from '../../scanner-image/src/clamd-health.js';

interface Ping {
  answer(): void;
  fail(error?: Error): void;
}

/** A clamd stand-in whose every PING waits until the test answers or fails it. */
function scriptedClamd() {
  const sent: Ping[] = [];
  const listeners: Array<() => void> = [];
  return {
    sent,
    ping(): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        sent.push({ answer: resolve, fail: (error = new Error('ECONNREFUSED')) => reject(error) });
        for (const listener of listeners.splice(0)) listener();
      });
    },
    /** The `n`-th PING (1-based), once the monitor has sent it. */
    async nth(n: number): Promise<Ping> {
      while (sent.length < n) await new Promise<void>((resolve) => listeners.push(resolve));
      return sent[n - 1] as Ping;
    },
  };
}

/** Lets the monitor react to a settled PING (a few promise turns). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const HOUR = 3_600_000;

describe('clamd health gate', () => {
  let health: ClamdHealth | undefined;
  afterEach(() => health?.close());

  function start(clamd: ReturnType<typeof scriptedClamd>, overrides: Partial<ClamdHealthOptions> = {}) {
    const changes: ClamdHealthChange[] = [];
    health = createClamdHealth({
      ping: () => clamd.ping(),
      checkIntervalMs: HOUR,
      retryIntervalMs: 1,
      pingTimeoutMs: HOUR,
      onChange: (change) => changes.push(change),
      ...overrides,
    });
    return { health, changes };
  }

  it('starts up (the worker creates it once clamd answered) and does not PING before the check interval', async () => {
    const clamd = scriptedClamd();
    const { health } = start(clamd);
    await expect(health.whenUp()).resolves.toBeUndefined();
    await settle();
    expect(health.state()).toBe('up');
    expect(clamd.sent).toHaveLength(0);
  });

  it('a failed scan that the next PING contradicts holds work only for that PING, and is no outage', async () => {
    const clamd = scriptedClamd();
    const { health, changes } = start(clamd);
    health.reportFailure();
    expect(health.state()).toBe('checking');
    const waiting = health.whenUp();
    (await clamd.nth(1)).answer();
    await expect(waiting).resolves.toBeUndefined();
    expect(health.state()).toBe('up');
    expect(changes).toEqual([]);
  });

  it('goes down when PING fails, keeps pinging, and comes back up when clamd answers', async () => {
    const clamd = scriptedClamd();
    const { health, changes } = start(clamd);
    const refused = new Error('connect ECONNREFUSED');
    health.reportFailure();
    (await clamd.nth(1)).fail(refused);
    await settle();
    expect(health.state()).toBe('down');
    let up = false;
    const waiting = health.whenUp().then(() => {
      up = true;
    });
    (await clamd.nth(2)).fail();
    (await clamd.nth(3)).fail();
    await settle();
    expect(up).toBe(false);
    expect(health.state()).toBe('down');
    (await clamd.nth(4)).answer();
    await waiting;
    expect(health.state()).toBe('up');
    expect(changes).toEqual([
      { state: 'down', error: refused },
      { state: 'up', downMs: expect.any(Number) },
    ]);
  });

  it('further failure reports while down change nothing: one down, one up', async () => {
    const clamd = scriptedClamd();
    const { health, changes } = start(clamd);
    health.reportFailure();
    (await clamd.nth(1)).fail();
    const second = await clamd.nth(2);
    // Scans that were already on the old connection fail late.
    health.reportFailure();
    health.reportFailure();
    second.answer();
    // That PING was out while the reports came in: it cannot vouch for clamd; the next one does.
    await settle();
    expect(health.state()).toBe('down');
    (await clamd.nth(3)).answer();
    await health.whenUp();
    expect(changes.map((c) => c.state)).toEqual(['down', 'up']);
  });

  it('a PING answered while a new failure came in does not count: clamd is asked again', async () => {
    const clamd = scriptedClamd();
    const { health } = start(clamd);
    health.reportFailure();
    const first = await clamd.nth(1);
    health.reportFailure();
    first.answer();
    await settle();
    expect(health.state()).toBe('checking');
    (await clamd.nth(2)).answer();
    await health.whenUp();
    expect(clamd.sent).toHaveLength(2);
  });

  it('whenUp gives up with the signal (the bounded wait of a job), and a later recovery does not trip over it', async () => {
    const clamd = scriptedClamd();
    const { health } = start(clamd);
    health.reportFailure();
    (await clamd.nth(1)).fail();
    const abort = new AbortController();
    const waiting = health.whenUp(abort.signal);
    abort.abort(new Error('waited long enough'));
    await expect(waiting).rejects.toThrow('waited long enough');
    await expect(health.whenUp(abort.signal)).rejects.toThrow('waited long enough');
    (await clamd.nth(2)).answer();
    await health.whenUp();
  });

  it('an idle worker notices a clamd that stopped answering from the periodic PING alone', async () => {
    const clamd = scriptedClamd();
    const { health, changes } = start(clamd, { checkIntervalMs: 5 });
    (await clamd.nth(1)).answer();
    (await clamd.nth(2)).fail();
    await settle();
    expect(health.state()).toBe('down');
    expect(changes.map((c) => c.state)).toEqual(['down']);
  });

  it('a PING that never answers counts as failed after the PING timeout (a hung clamd)', async () => {
    const clamd = scriptedClamd();
    const { health, changes } = start(clamd, { pingTimeoutMs: 20 });
    health.reportFailure();
    await clamd.nth(1);
    await clamd.nth(2);
    expect(health.state()).toBe('down');
    expect(changes[0]).toMatchObject({
      state: 'down',
      error: expect.objectContaining({ message: expect.stringMatching(/within 20 ms/) }),
    });
  });

  it('close rejects waiters and stops pinging', async () => {
    const clamd = scriptedClamd();
    const { health } = start(clamd);
    health.reportFailure();
    (await clamd.nth(1)).fail();
    const waiting = health.whenUp();
    health.close();
    await expect(waiting).rejects.toThrow('closed');
    const sent = clamd.sent.length;
    for (const ping of clamd.sent) ping.fail();
    await settle();
    await settle();
    expect(clamd.sent).toHaveLength(sent);
  });

  it('a throwing listener does not stop the monitor', async () => {
    const clamd = scriptedClamd();
    const { health } = start(clamd, {
      onChange: () => {
        throw new Error('log sink broken');
      },
    });
    health.reportFailure();
    (await clamd.nth(1)).fail();
    (await clamd.nth(2)).answer();
    await health.whenUp();
    expect(health.state()).toBe('up');
  });
});
