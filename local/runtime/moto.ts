import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type ManagedProcess, startProcess, waitFor } from './processes.js';

export interface MotoServer {
  readonly endpoint: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

export const PROJECT_ROOT = join(import.meta.dirname, '..', '..');
const MOTO_BIN = join(PROJECT_ROOT, '.venv', 'bin', 'moto_server');

/**
 * Starts moto (the local AWS) on 127.0.0.1 and turns on Step Functions execution, so the production ASL
 * really runs: `.waitForTaskToken`, aws-sdk S3 tasks, sns:publish, Retry and Catch.
 */
export async function startMoto(options: { logDir: string; port?: number }): Promise<MotoServer> {
  if (!existsSync(MOTO_BIN)) {
    throw new Error(`moto is not installed at ${MOTO_BIN}; run: bash scripts/bootstrap.sh`);
  }
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = startProcess(MOTO_BIN, ['-H', '127.0.0.1', '-p', String(port)], join(options.logDir, 'moto.log'));
  try {
    await waitFor('moto to listen', async () => (await fetch(`${endpoint}/moto-api/`)).ok, 30_000);
    const response = await fetch(`${endpoint}/moto-api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stepfunctions: { execute_state_machine: true } }),
    });
    if (!response.ok) throw new Error(`moto refused the Step Functions config: ${response.status}`);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return { endpoint, process: proc, stop: () => proc.stop() };
}
