import { join } from 'node:path';
import { STATE_DIR } from './runtime/pipeline.js';
import type { Upload } from './runtime/scan-session.js';
import { buildSamples, LOCAL_LIMITS } from './samples.js';

/** The samples `npm start` uploads, as uploads with their expected verdicts and the limits they need. */
export async function prepareSampleUploads(): Promise<{
  uploads: Upload[];
  maxObjectBytes: number;
  clamdLimits: typeof LOCAL_LIMITS.clamd;
  describe: string[];
}> {
  const samples = await buildSamples(join(STATE_DIR, 'samples'));
  return {
    uploads: samples.map((sample) => ({
      key: sample.key,
      source: sample.body.kind === 'file' ? { path: sample.body.path } : { body: sample.body.bytes },
      expected: sample.expected,
    })),
    maxObjectBytes: LOCAL_LIMITS.maxObjectBytes,
    clamdLimits: LOCAL_LIMITS.clamd,
    describe: samples.map((sample) => `${sample.key}: ${sample.description}`),
  };
}
