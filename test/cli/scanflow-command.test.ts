import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ExecutionsReport } from '../../cli/commands/executions.js';
import type { StatusReport } from '../../cli/commands/status.js';
import { EXIT } from '../../cli/exit-codes.js';
import type { Verdict } from '../../functions/commons/verdict.js';
import type { StartScanConfig } from '../../functions/start-scan/config.js';
import { startScan } from '../../functions/start-scan/start-scan.js';
import { PROJECT_ROOT } from '../../local/runtime/moto.js';
import { freePort } from '../../local/runtime/processes.js';
import { type LocalPipeline, startLocalPipeline, waitForExecutionEnd } from '../support/local-aws.js';
import { completeWithVerdict, takeScanJob } from '../support/scripted-worker.js';

/**
 * The `scanflow` command, run as a user runs it (the package.json bin, as its own process, with no AWS
 * variables in its environment) against a local pipeline: moto with the production state machine, the real
 * start-scan logic, and a scripted worker so a scan can be held running. The command finds everything from
 * the layout file this test writes, as `npm start -- --watch` writes .scanflow/local.json.
 */
let pipeline: LocalPipeline;
let layoutFile: string;
let staging: string;
let destination: string;
let quarantine: string;

interface Scanned {
  readonly key: string;
  readonly versionId: string;
  readonly executionName: string;
}

/** Keyed by what each upload is for. */
const uploads: Record<string, Scanned> = {};

const REPORT = 'docs/q1 report.pdf';

async function uploadAndScan(key: string, body: string, verdict: Verdict | 'hold'): Promise<Scanned> {
  await pipeline.clients.s3.send(new PutObjectCommand({ Bucket: staging, Key: key, Body: body }));
  const config: StartScanConfig = {
    stateMachineArn: pipeline.layout.stateMachineArn,
    pipelineBuckets: new Set([destination, quarantine]),
    excludedKeyPrefixes: [],
    excludedKeySuffixes: [],
    // A long timeout: a held scan stays RUNNING for the whole file.
    timing: {
      queueWaitSeconds: 3600,
      baseTimeoutSeconds: 7200,
      minBytesPerSecond: 1_000_000,
      maxTimeoutSeconds: 10800,
    },
    copySourceEncoding: 'raw',
  };
  const started = await startScan(
    { bucket: staging, keyCandidates: [key] },
    { s3: pipeline.clients.s3, sfn: pipeline.clients.sfn, config },
  );
  if (started.outcome !== 'started') throw new Error(`expected a started execution, got ${started.outcome}`);
  const executionArn = `${pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:')}:${started.executionName}`;
  const job = await takeScanJob(pipeline.clients.sqs, pipeline.layout.queues.scanJobs, executionArn);
  if (verdict !== 'hold') {
    await completeWithVerdict(pipeline.clients, job, verdict);
    const ended = await waitForExecutionEnd(pipeline.clients, executionArn);
    if (ended.status !== 'SUCCEEDED') throw new Error(`${key}: execution ended ${ended.status}`);
  }
  return { key, versionId: started.identity.versionId ?? 'null', executionName: started.executionName };
}

beforeAll(async () => {
  pipeline = await startLocalPipeline();
  ({ staging, destination, quarantine } = pipeline.layout.buckets);
  const dir = mkdtempSync(join(tmpdir(), 'scanflow-cli-'));
  layoutFile = join(dir, 'local.json');
  // What LocalRuntime.describe() writes to .scanflow/local.json.
  writeFileSync(
    layoutFile,
    JSON.stringify({
      ...pipeline.layout,
      clamd: 'not used here',
      logs: pipeline.logDir,
      credentials: { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' },
    }),
  );
  // One key scanned twice (Clean, then Infected); a key with the same last segment elsewhere; an
  // Unscannable upload; and one whose scan is still running. In this order: `executions` lists them back.
  uploads.reportClean = await uploadAndScan(REPORT, 'first draft', { verdict: 'Clean' });
  uploads.reportInfected = await uploadAndScan(REPORT, 'second draft', {
    verdict: 'Infected',
    signature: 'Eicar-Test-Signature',
  });
  uploads.archived = await uploadAndScan('archive/q1 report.pdf', 'archived', { verdict: 'Clean' });
  uploads.encrypted = await uploadAndScan('enc.zip', 'PK…', { verdict: 'Unscannable', reason: 'encrypted' });
  uploads.running = await uploadAndScan('pending.bin', 'still scanning', 'hold');
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  // Stopping waits for the worker's last long poll (up to its poll wait) and for the servers to exit.
}, 60_000);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The bin package.json declares, run as an executable: its shebang, its loader, its exit code. */
function scanflow(...args: string[]): Promise<Run> {
  const bin = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: { scanflow: string } })
    .bin.scanflow;
  return new Promise((resolve, reject) => {
    const child = spawn(join(PROJECT_ROOT, bin), args, {
      cwd: PROJECT_ROOT,
      // No AWS_* variables: everything must come from the layout file.
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const local = () => ['--local', '--layout', layoutFile];

function json<T>(run: Run): T {
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout) as T;
}

/**
 * The table under `title` in human output, cut into cells at the columns its ─── rule marks: misaligned
 * rows come out garbled and fail the comparisons.
 */
function tableAfter(output: string, title: string): string[][] {
  const lines = output.split('\n');
  const start = lines.findIndex((line) => line.trim().startsWith(title));
  expect(start).toBeGreaterThanOrEqual(0);
  const ruleAt = lines.findIndex((line, index) => index > start && /^\s*─/.test(line));
  const rule = lines[ruleAt] ?? '';
  const columns = [...rule.matchAll(/─+/g)].map((match) => match.index ?? 0);
  const rows: string[][] = [];
  const misaligned: string[] = [];
  for (const line of [lines[ruleAt - 1] ?? '', ...lines.slice(ruleAt + 1)]) {
    if (line.trim() === '') break;
    const cells = columns.map((column, i) => line.slice(column, columns[i + 1] ?? line.length));
    // Every cell starts exactly at its column, two spaces after the previous one ends.
    cells.forEach((cell, i) => {
      const column = columns[i] ?? 0;
      const startsLate = cell.trim() !== '' && cell.startsWith(' ');
      const noGap = i > 0 && line.length > column && line.slice(column - 2, column) !== '  ';
      if (startsLate || noGap) misaligned.push(line);
    });
    rows.push(cells.map((cell) => cell.trim()));
  }
  expect(misaligned).toEqual([]);
  return rows;
}

const SCAN_PATH = ['ScanObject', 'TagVerdict', 'RouteByVerdict'];
const PROMOTED = [...SCAN_PATH, 'PromoteObject', 'RemoveFromStaging', 'NotifyResult'];
const QUARANTINED = [...SCAN_PATH, 'QuarantineObject', 'RemoveFromStaging', 'NotifyResult'];

describe('scanflow status', () => {
  it('a key uploaded twice: the newer upload was Infected (exit 1); both copies and both executions are shown', async () => {
    const human = await scanflow('status', `s3://${staging}/${REPORT}`, ...local());
    expect(human.stderr).toBe('');
    expect(human.code).toBe(EXIT.notClean);
    const { reportClean, reportInfected } = uploads;
    expect(human.stdout).toMatch(/^verdict {2}Infected \(Eicar-Test-Signature\)$/m);
    expect(human.stdout).toContain(`about    version ${reportInfected?.versionId}, uploaded `);
    expect(human.stdout).toContain(
      `now      destination (s3://${destination}/${REPORT}), quarantine (s3://${quarantine}/${REPORT})`,
    );
    const executions = tableAfter(human.stdout, 'scan-object executions of this key');
    expect(executions.map((row) => [row[0], row[1], row[2], row[5], row[6]])).toEqual([
      ['name', 'status', 'upload version', 'verdict', 'placement'],
      [
        reportInfected?.executionName,
        'SUCCEEDED',
        reportInfected?.versionId,
        'Infected Eicar-Test-Signature',
        'quarantine',
      ],
      [reportClean?.executionName, 'SUCCEEDED', reportClean?.versionId, 'Clean', 'destination'],
    ]);
    // Locally there is no console: each execution's ARN is printed instead of a link.
    expect(human.stdout).toContain(`    path  ${QUARANTINED.join(' → ')}`);
    expect(human.stdout).toContain(`    path  ${PROMOTED.join(' → ')}`);
    expect(human.stdout).toContain(
      `    arn   ${pipeline.layout.stateMachineArn.replace(':stateMachine:', ':execution:')}:${reportInfected?.executionName}`,
    );
    expect(human.stdout).not.toContain('https://');
    const versions = tableAfter(human.stdout, 'versions');
    expect(versions.map((row) => [row[0], row[1], row[3], row[4]])).toEqual([
      ['area', 'bucket', 'current', 'scan-result'],
      ['staging', staging, '', ''],
      ['destination', destination, 'yes', 'Clean'],
      ['quarantine', quarantine, 'yes', 'Infected'],
    ]);

    const run = await scanflow('status', `s3://${staging}/${REPORT}`, ...local(), '--json');
    expect(run.code).toBe(EXIT.notClean);
    const report = json<StatusReport>(run);
    expect(report.object).toEqual({ bucket: staging, key: REPORT, area: 'staging', versionId: null });
    expect(report.verdict).toMatchObject({
      state: 'Infected',
      signature: 'Eicar-Test-Signature',
      versionId: reportInfected?.versionId,
      placement: 'quarantine',
      basis: 'execution',
    });
    expect(report.where.map((copy) => [copy.area, copy.bucket])).toEqual([
      ['destination', destination],
      ['quarantine', quarantine],
    ]);
    // The pipeline removed both uploads from staging once it moved them.
    expect(report.locations.map((l) => [l.area, l.versions.length])).toEqual([
      ['staging', 0],
      ['destination', 1],
      ['quarantine', 1],
    ]);
    expect(report.locations[1]?.versions[0]?.verdictTags).toMatchObject({ 'scan-result': 'Clean' });
    expect(report.locations[2]?.versions[0]?.verdictTags).toMatchObject({
      'scan-result': 'Infected',
      'scan-signature': 'Eicar-Test-Signature',
    });
    // The upload of archive/q1 report.pdf has the same slug in its execution name: not this key's.
    expect(
      report.executions.map((e) => [e.name, e.status, e.upload.versionId, e.result?.verdict, e.statePath]),
    ).toEqual([
      [reportInfected?.executionName, 'SUCCEEDED', reportInfected?.versionId, 'Infected', QUARANTINED],
      [reportClean?.executionName, 'SUCCEEDED', reportClean?.versionId, 'Clean', PROMOTED],
    ]);
    for (const execution of report.executions) {
      expect(execution.consoleUrl).toBeNull();
      expect(execution.durationMs).toBe(
        Date.parse(String(execution.stopDate)) - Date.parse(String(execution.startDate)),
      );
    }
  });

  it('--version-id of the older upload: Clean, promoted to destination (exit 0)', async () => {
    const run = await scanflow(
      'status',
      `s3://${staging}/${REPORT}`,
      '--version-id',
      uploads.reportClean?.versionId ?? '',
      ...local(),
      '--json',
    );
    expect(run.code).toBe(EXIT.ok);
    expect(json<StatusReport>(run).verdict).toMatchObject({
      state: 'Clean',
      versionId: uploads.reportClean?.versionId,
      placement: 'destination',
      basis: 'execution',
    });
  });

  it('the copy in destination, named by its own version id: Clean by its tags (exit 0)', async () => {
    const where = json<StatusReport>(
      await scanflow('status', `s3://${destination}/${REPORT}`, ...local(), '--json'),
    ).where;
    const copy = where.find((c) => c.area === 'destination');
    expect(copy).toBeDefined();
    const run = await scanflow(
      'status',
      `s3://${destination}/${REPORT}`,
      '--version-id',
      copy?.versionId ?? '',
      ...local(),
    );
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/^verdict {2}Clean$/m);
    expect(run.stdout).toContain(`because  from the scan-result tag of version ${copy?.versionId} in destination`);
  });

  it('an Unscannable upload stays blocked in staging (exit 1)', async () => {
    const run = await scanflow('status', `s3://${staging}/enc.zip`, ...local(), '--json');
    expect(run.code).toBe(EXIT.notClean);
    const report = json<StatusReport>(run);
    expect(report.verdict).toMatchObject({ state: 'Unscannable', reason: 'encrypted', placement: 'staging' });
    expect(report.where).toEqual([{ area: 'staging', bucket: staging, versionId: uploads.encrypted?.versionId }]);
    expect(report.locations[0]?.versions[0]?.verdictTags).toMatchObject({
      'scan-result': 'Unscannable',
      'scan-reason': 'encrypted',
    });
  });

  it('an upload whose scan is still running has no verdict yet (exit 5)', async () => {
    const run = await scanflow('status', `s3://${staging}/pending.bin`, ...local(), '--json');
    expect(run.code).toBe(EXIT.noVerdict);
    const report = json<StatusReport>(run);
    expect(report.verdict).toMatchObject({ state: 'no-verdict', basis: 'execution', placement: 'staging' });
    expect(report.executions.map((e) => [e.name, e.status, e.durationMs, e.statePath])).toEqual([
      [uploads.running?.executionName, 'RUNNING', null, ['ScanObject']],
    ]);
  });

  it('a key the pipeline never saw is not found (exit 4)', async () => {
    const run = await scanflow('status', `s3://${staging}/docs/never uploaded.pdf`, ...local());
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stdout).toMatch(/^verdict {2}not found$/m);
  });

  it('a bucket that is not the pipeline’s is a usage error (exit 2) listing the pipeline’s buckets', async () => {
    const run = await scanflow('status', 's3://someone-elses-bucket/x', ...local());
    expect(run).toEqual({
      code: EXIT.usage,
      stdout: '',
      stderr: `scanflow: someone-elses-bucket is not a bucket of this pipeline (staging: ${staging}; destination: ${destination}; quarantine: ${quarantine})\n`,
    });
  });
});

describe('scanflow executions', () => {
  const newestFirst = () =>
    [uploads.running, uploads.encrypted, uploads.archived, uploads.reportInfected, uploads.reportClean].map(
      (upload) => upload?.executionName,
    );

  it('lists every execution, newest first, as an aligned table (exit 0)', async () => {
    const run = await scanflow('executions', ...local());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(EXIT.ok);
    const rows = tableAfter(run.stdout, 'name');
    expect(rows[0]).toEqual(['name', 'status', 'started', 'duration']);
    expect(rows.slice(1).map((row) => row[0])).toEqual(newestFirst());
    expect(rows.slice(1).map((row) => row[1])).toEqual(['RUNNING', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(rows[1]?.[3]).toMatch(/ so far$/);
    for (const row of rows.slice(1)) expect(row[2]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it('--status RUNNING --json: only the running one, with no duration yet', async () => {
    const run = await scanflow('executions', '--status', 'RUNNING', ...local(), '--json');
    expect(run.code).toBe(EXIT.ok);
    const report = json<ExecutionsReport>(run);
    expect(report.filter).toEqual({ status: 'RUNNING', since: null, limit: 50 });
    expect(report.executions.map((e) => [e.name, e.status, e.durationMs, e.consoleUrl])).toEqual([
      [uploads.running?.executionName, 'RUNNING', null, null],
    ]);
    expect(report.more).toBe(false);
  });

  it('--status SUCCEEDED --limit 2: the two newest, and that there are more', async () => {
    const run = await scanflow('executions', '--status', 'SUCCEEDED', '--limit', '2', ...local(), '--json');
    const report = json<ExecutionsReport>(run);
    expect(report.executions.map((e) => e.name)).toEqual(newestFirst().slice(1, 3));
    expect(report.more).toBe(true);
    expect(report.stateMachineArn).toBe(pipeline.layout.stateMachineArn);

    const human = await scanflow('executions', '--status', 'SUCCEEDED', '--limit', '2', ...local());
    expect(human.stdout).toContain('showing the newest 2; more match (raise --limit or narrow --since)');
  });

  it('--since: only executions started since then', async () => {
    const all = json<ExecutionsReport>(await scanflow('executions', ...local(), '--json')).executions;
    const newest = all[0];
    const second = all[1];
    if (!newest || !second) throw new Error('expected executions');
    const sinceSecond = String(second.startDate);
    const run = await scanflow('executions', '--since', sinceSecond, ...local(), '--json');
    expect(json<ExecutionsReport>(run).executions.map((e) => e.name)).toEqual(
      all.filter((e) => String(e.startDate) >= sinceSecond).map((e) => e.name),
    );
    const after = new Date(Date.parse(String(newest.startDate)) + 1000).toISOString();
    const none = await scanflow('executions', '--since', after, ...local());
    expect(none.code).toBe(EXIT.ok);
    expect(none.stdout.trimEnd().split('\n').pop()).toBe('none');
  });
});

describe('the target', () => {
  it('a layout whose endpoint no longer answers is unreachable (exit 3), with a hint', async () => {
    const stale = join(mkdtempSync(join(tmpdir(), 'scanflow-cli-')), 'local.json');
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(stale, JSON.stringify({ ...pipeline.layout, endpoint }));
    const run = await scanflow('executions', '--layout', stale);
    expect(run.code).toBe(EXIT.unreachable);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`scanflow: cannot reach the local pipeline at ${endpoint}`);
    expect(run.stderr).toContain('Is `npm start -- --watch` still running?');
  });
});
