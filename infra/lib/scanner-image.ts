import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, IgnoreMode } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';

export const SCANNER_DOCKERFILE = 'scanner-image/Dockerfile';

/**
 * Paths of the repository the scanner image never needs; used only when the Dockerfile's inputs cannot be
 * listed (a `COPY . …`). A root `.dockerignore`, if present, is applied as well.
 */
export const SCANNER_CONTEXT_DENYLIST = [
  '.git',
  '**/node_modules',
  '.venv',
  '.scanflow',
  'cdk.out',
  'coverage',
  'infra',
  'test',
  'docs',
  '**/*.log',
];

/**
 * The build-context sources the Dockerfile copies (COPY/ADD without `--from`), as written. `undefined` when
 * it copies the whole context, so no allowlist can be derived.
 */
export function dockerfileCopySources(dockerfile: string): string[] | undefined {
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim());
  const sources: string[] = [];
  for (const instruction of instructions) {
    const match = /^(COPY|ADD)\s+(.*)$/i.exec(instruction);
    if (!match?.[2]) continue;
    let rest = match[2].trim();
    const flags: string[] = [];
    while (rest.startsWith('--')) {
      const [flag = '', ...others] = rest.split(/\s+/);
      flags.push(flag);
      rest = others.join(' ');
    }
    if (flags.some((flag) => flag.startsWith('--from'))) continue;
    const args = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
    for (const source of args.slice(0, -1)) {
      if (/^https?:\/\//.test(source)) continue;
      const normalized = source.replace(/^\.\//, '').replace(/\/+$/, '');
      if (normalized === '' || normalized === '.') return undefined;
      sources.push(normalized);
    }
  }
  return sources;
}

/**
 * Docker-ignore patterns that stage exactly what the Dockerfile copies. The image's asset hash then changes
 * only when its inputs change (not when tests, infra or local files do), and synth stays fast because the
 * repository root, the build context, is not copied wholesale into cdk.out.
 */
export function scannerContextExcludes(repoRoot: string, dockerfile = SCANNER_DOCKERFILE): string[] {
  const sources = dockerfileCopySources(readFileSync(join(repoRoot, dockerfile), 'utf8'));
  if (sources === undefined) return SCANNER_CONTEXT_DENYLIST;
  return ['*', ...sources.map((source) => `!${source}`), `!${dockerfile}`];
}

/**
 * The scanner worker image built from `scanner-image/Dockerfile` with the repository root as context, for
 * linux/arm64. Synth only hashes and stages the context; the image is built by `cdk deploy`.
 */
export function scannerImageFromRepository(repoRoot: string): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(repoRoot, {
    file: SCANNER_DOCKERFILE,
    platform: Platform.LINUX_ARM64,
    ignoreMode: IgnoreMode.DOCKER,
    exclude: scannerContextExcludes(repoRoot),
  });
}

/**
 * ECS ignores the image's HEALTHCHECK; this repeats it. clamd answers PING once its signatures are loaded.
 */
export const SCANNER_HEALTH_CHECK: ecs.HealthCheck = {
  command: ['CMD', 'clamdscan', '--config-file=/etc/clamav/clamd.conf', '--ping', '1'],
  interval: Duration.seconds(30),
  timeout: Duration.seconds(10),
  retries: 5,
  // Signature load takes 20–40 s on one vCPU; failures before this do not count.
  startPeriod: Duration.minutes(2),
};
