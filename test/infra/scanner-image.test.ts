import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../../infra/lib/scan-pipeline.js';
import { dockerfileCopySources, SCANNER_CONTEXT_DENYLIST, SCANNER_DOCKERFILE } from '../../infra/lib/scanner-image.js';
import { synthScanflow } from './synth.js';

interface AssetManifest {
  dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }>;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('scanner image asset', () => {
  let outdir: string;
  let manifest: AssetManifest;

  beforeAll(() => {
    const { app } = synthScanflow({});
    const assembly = app.synth();
    outdir = assembly.directory;
    manifest = JSON.parse(readFileSync(join(outdir, 'Scanflow.assets.json'), 'utf8')) as AssetManifest;
  });

  test('is built from scanner-image/Dockerfile for linux/arm64, without Docker at synth', () => {
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]?.source).toMatchObject({ dockerFile: SCANNER_DOCKERFILE, platform: 'linux/arm64' });
  });

  test('stages exactly what the Dockerfile copies, plus the Dockerfile', () => {
    const [image] = Object.values(manifest.dockerImages);
    const context = join(outdir, image?.source.directory ?? '');
    const staged = filesUnder(context).map((f) => relative(context, f));
    const sources = dockerfileCopySources(readFileSync(join(REPO_ROOT, SCANNER_DOCKERFILE), 'utf8')) ?? [];
    expect(sources.length).toBeGreaterThan(0);
    for (const file of staged) {
      expect(file === SCANNER_DOCKERFILE || sources.some((s) => file === s || file.startsWith(`${s}/`))).toBe(true);
    }
    for (const source of sources) expect(staged.some((f) => f === source || f.startsWith(`${source}/`))).toBe(true);
    expect(staged.some((f) => f.startsWith('node_modules/') || f.startsWith('test/') || f.startsWith('infra/'))).toBe(
      false,
    );
  });
});

describe('Dockerfile COPY sources', () => {
  test('reads COPY and ADD sources, skipping --from stages, flags, JSON form and continuations', () => {
    const dockerfile = [
      'FROM node:22 AS build',
      'COPY package.json package-lock.json ./',
      'COPY --chown=node:node functions/commons \\',
      '     ./functions/commons',
      'COPY --from=build /src/dist/ /opt/app/',
      'ADD ["scanner-image/clamd.conf", "/etc/clamav/clamd.conf"]',
      'ADD https://example.com/file.tgz /tmp/',
      'RUN echo COPY not-an-instruction',
    ].join('\n');
    expect(dockerfileCopySources(dockerfile)).toEqual([
      'package.json',
      'package-lock.json',
      'functions/commons',
      'scanner-image/clamd.conf',
    ]);
  });

  test('a Dockerfile that copies the whole context falls back to the denylist', () => {
    expect(dockerfileCopySources('FROM x\nCOPY . /app\n')).toBeUndefined();
    expect(SCANNER_CONTEXT_DENYLIST).toContain('**/node_modules');
  });
});
