import { describe, expect, it } from '@jest/globals';
import { ConfigurationError } from '../../functions/commons/errors.js';
import { CLAMAV_MAX_FILE_BYTES, defaultConcurrency, loadConfig } from '../../scanner-image/src/config.js';

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/scan-jobs';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig({ SCAN_JOBS_QUEUE_URL: QUEUE }, 4)).toEqual({
      queueUrl: QUEUE,
      clamd: { kind: 'tcp', host: '127.0.0.1', port: 3310 },
      concurrency: defaultConcurrency(4),
      maxObjectBytes: CLAMAV_MAX_FILE_BYTES,
      heartbeatIntervalMs: 20_000,
      metrics: { enabled: true, namespace: 'Scanflow', dimensions: [] },
      shutdownGraceMs: 25_000,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig(
      {
        SCAN_JOBS_QUEUE_URL: QUEUE,
        CLAMD_HOST: 'clamd.internal',
        CLAMD_PORT: '3311',
        WORKER_CONCURRENCY: '3',
        MAX_OBJECT_BYTES: '16777216',
        HEARTBEAT_INTERVAL_SECONDS: '5',
        METRICS_NAMESPACE: 'Acme/Scan',
        METRICS_DIMENSIONS: 'Environment=prod, Cluster = scan-pool',
        METRICS_ENABLED: 'FALSE',
        SHUTDOWN_GRACE_SECONDS: '100',
      },
      2,
    );
    expect(config).toEqual({
      queueUrl: QUEUE,
      clamd: { kind: 'tcp', host: 'clamd.internal', port: 3311 },
      concurrency: 3,
      maxObjectBytes: 16_777_216,
      heartbeatIntervalMs: 5_000,
      metrics: {
        enabled: false,
        namespace: 'Acme/Scan',
        dimensions: [
          { Name: 'Environment', Value: 'prod' },
          { Name: 'Cluster', Value: 'scan-pool' },
        ],
      },
      shutdownGraceMs: 100_000,
    });
  });

  it('prefers the unix socket over host and port', () => {
    const config = loadConfig({ SCAN_JOBS_QUEUE_URL: QUEUE, CLAMD_SOCKET: '/run/clamav/clamd.sock', CLAMD_PORT: '1' });
    expect(config.clamd).toEqual({ kind: 'socket', path: '/run/clamav/clamd.sock' });
  });

  it("reads CLAMD_TIME_ZONE, the zone clamd's database date is written in (unset: the worker's own)", () => {
    expect(loadConfig({ SCAN_JOBS_QUEUE_URL: QUEUE, CLAMD_TIME_ZONE: 'Europe/Berlin' }).clamdTimeZone).toBe(
      'Europe/Berlin',
    );
    expect(loadConfig({ SCAN_JOBS_QUEUE_URL: QUEUE }).clamdTimeZone).toBeUndefined();
  });

  it('scales the default concurrency with the CPUs, at least 2', () => {
    expect(defaultConcurrency(1)).toBe(2);
    expect(defaultConcurrency(4)).toBe(8);
  });

  it.each([
    [{}, 'SCAN_JOBS_QUEUE_URL is required'],
    [{ SCAN_JOBS_QUEUE_URL: 'scan-jobs' }, 'SCAN_JOBS_QUEUE_URL="scan-jobs" is invalid'],
    [{ CLAMD_PORT: '70000' }, 'CLAMD_PORT="70000" is invalid; accepted: an integer from 1 to 65535'],
    [{ CLAMD_PORT: '33a' }, 'CLAMD_PORT="33a" is invalid'],
    [{ CLAMD_SOCKET: 'clamd.sock' }, 'CLAMD_SOCKET="clamd.sock" is invalid; accepted: an absolute path'],
    [{ WORKER_CONCURRENCY: '0' }, 'WORKER_CONCURRENCY="0" is invalid; accepted: an integer from 1 to 256'],
    [
      { MAX_OBJECT_BYTES: '3000000000' },
      `MAX_OBJECT_BYTES="3000000000" is invalid; accepted: an integer from 1 to ${CLAMAV_MAX_FILE_BYTES}`,
    ],
    [{ HEARTBEAT_INTERVAL_SECONDS: '1.5' }, 'HEARTBEAT_INTERVAL_SECONDS="1.5" is invalid'],
    [{ METRICS_ENABLED: 'yes' }, 'METRICS_ENABLED="yes" is invalid; accepted: true or false'],
    [{ METRICS_NAMESPACE: 'AWS/S3' }, 'METRICS_NAMESPACE="AWS/S3" is invalid'],
    [
      { METRICS_DIMENSIONS: 'Environment' },
      'METRICS_DIMENSIONS="Environment" is invalid at "Environment"; accepted: Name=Value pairs',
    ],
    [{ METRICS_DIMENSIONS: 'A=1,A=2' }, 'a dimension name appears twice'],
    [{ METRICS_DIMENSIONS: 'Verdict=Clean' }, '"Verdict" is reserved'],
    [{ SHUTDOWN_GRACE_SECONDS: '-1' }, 'SHUTDOWN_GRACE_SECONDS="-1" is invalid'],
    [{ CLAMD_TIME_ZONE: 'Mars/Olympus' }, 'CLAMD_TIME_ZONE="Mars/Olympus" is invalid; accepted: an IANA time zone'],
  ])('rejects %j naming the variable and what it accepts', (env, message) => {
    const full = { SCAN_JOBS_QUEUE_URL: QUEUE, ...env };
    if (!('SCAN_JOBS_QUEUE_URL' in env) && Object.keys(env).length === 0)
      delete (full as Record<string, string>).SCAN_JOBS_QUEUE_URL;
    expect(() => loadConfig(full)).toThrow(ConfigurationError);
    expect(() => loadConfig(full)).toThrow(message);
  });

  it('reports every problem at once', () => {
    expect(() => loadConfig({ CLAMD_PORT: 'x', WORKER_CONCURRENCY: 'y' })).toThrow(
      /SCAN_JOBS_QUEUE_URL is required[\s\S]*CLAMD_PORT="x"[\s\S]*WORKER_CONCURRENCY="y"/,
    );
  });
});
