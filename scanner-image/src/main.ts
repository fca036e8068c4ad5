/**
 * Process entry of the scanner worker: `tsx scanner-image/src/main.ts` locally, an esbuild bundle in the
 * image. Configuration comes only from the environment (see config.ts); a bad value exits 1 at start.
 */
import { ConfigurationError } from '../../functions/commons/errors.js';
import { loadConfig } from './config.js';
import { jsonLogger as log } from './log.js';
import { startWorker } from './worker.js';

// A scan worker must not die on one bad job: log and keep serving. Jobs are isolated by their own
// try/catch; these only catch what escapes a library callback.
process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { error: reason }));
process.on('uncaughtException', (error) => log.error('uncaught exception', { error }));

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigurationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const worker = await startWorker(config);
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn('second signal; exiting now', { signal });
      process.exit(1);
    }
    log.info('shutdown requested', { signal });
    worker.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  log.error('worker failed to start', { error });
  process.exit(1);
});
