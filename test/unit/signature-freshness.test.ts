import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { unsignedDatabase } from '../../scanner-image/signatures/cud.js';
import { parseClamdVersion } from '../../scanner-image/src/clamd-reply.js';
import type { LogFields, Logger } from '../../scanner-image/src/log.js';
import {
  databaseVersionNumber,
  freshnessMetricData,
  freshnessReading,
  localTimeZone,
  parseClamdDate,
  SIGNATURE_METRICS,
  signatureAgeHours,
} from '../../scanner-image/src/signature-freshness.js';
import { startSignatureMonitor } from '../../scanner-image/src/signature-monitor.js';

/** One database (stime 1795626480 = 2026-11-25T17:08:00Z) as clamd 1.4.6 printed it under two TZ settings. */
const MEASURED = {
  instant: new Date(1795626480 * 1000),
  utc: 'Wed Nov 25 17:08:00 2026',
  kolkata: 'Wed Nov 25 22:38:00 2026',
};

describe('parseClamdDate', () => {
  it('reads clamd VERSION dates in the zone clamd printed them in (measured pairs)', () => {
    expect(parseClamdDate(MEASURED.utc, 'UTC')).toEqual(MEASURED.instant);
    expect(parseClamdDate(MEASURED.kolkata, 'Asia/Kolkata')).toEqual(MEASURED.instant);
    // The same text read in the wrong zone is off by that zone's offset: why the zone must be clamd's.
    expect(parseClamdDate(MEASURED.kolkata, 'UTC')?.getTime()).toBe(MEASURED.instant.getTime() + 5.5 * 3_600_000);
  });

  it('follows daylight saving time in the zone', () => {
    // New York is UTC-5 in winter, UTC-4 in summer.
    expect(parseClamdDate('Tue Nov 25 08:26:02 2025', 'America/New_York')?.toISOString()).toBe(
      '2025-11-25T13:26:02.000Z',
    );
    expect(parseClamdDate('Tue Jul 15 08:26:02 2025', 'America/New_York')?.toISOString()).toBe(
      '2025-07-15T12:26:02.000Z',
    );
    // Just after the spring change (02:00 EST → 03:00 EDT on 2025-03-09).
    expect(parseClamdDate('Sun Mar  9 03:30:00 2025', 'America/New_York')?.toISOString()).toBe(
      '2025-03-09T07:30:00.000Z',
    );
  });

  it("reads ctime's space-padded day and the example in the clamd reply docs", () => {
    expect(parseClamdDate('Tue Nov  4 08:26:02 2025', 'UTC')?.toISOString()).toBe('2025-11-04T08:26:02.000Z');
    const version = parseClamdVersion('ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025\0');
    expect(parseClamdDate(version.databaseDate ?? '', 'UTC')?.toISOString()).toBe('2025-11-25T08:26:02.000Z');
  });

  it("defaults to the worker's own time zone", () => {
    expect(parseClamdDate(MEASURED.utc)).toEqual(parseClamdDate(MEASURED.utc, localTimeZone()));
  });

  it('refuses what is not a ctime date rather than guess', () => {
    for (const text of [
      '',
      'unknown',
      '2025-11-25T08:26:02Z',
      'Tue Nov 25 08:26 2025',
      'Mon Nov 25 08:26:02 2025', // 2025-11-25 was a Tuesday
      'Sun Feb 30 08:26:02 2025', // rolled over by Date.UTC: refused
      'Tue Nov 25 24:00:00 2025',
      'Tue Foo 25 08:26:02 2025',
    ]) {
      expect({ text, parsed: parseClamdDate(text, 'UTC') }).toEqual({ text, parsed: undefined });
    }
  });
});

describe('signature age and version', () => {
  it('is hours from the publication date, fractional, negative when the date is ahead', () => {
    const published = new Date('2025-11-25T08:26:02Z');
    expect(signatureAgeHours(published, new Date('2025-11-27T08:26:02Z'))).toBe(48);
    expect(signatureAgeHours(published, new Date('2025-11-25T09:56:02Z'))).toBe(1.5);
    expect(signatureAgeHours(published, new Date('2025-11-25T07:26:02Z'))).toBe(-1);
  });

  it('takes the version as a number only when clamd reports one', () => {
    expect(databaseVersionNumber(parseClamdVersion('ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025'))).toBe(27471);
    expect(databaseVersionNumber(parseClamdVersion('ClamAV 1.4.6'))).toBeUndefined();
    expect(databaseVersionNumber({ engine: 'ClamAV 1.4.6', databaseVersion: '27471a' })).toBeUndefined();
  });
});

describe('freshnessMetricData', () => {
  const dims = [{ Name: 'Pipeline', Value: 'prod' }];
  const at = new Date('2025-11-27T08:26:02Z');

  it('publishes age, version and updates with the worker dimensions', () => {
    const reading = freshnessReading(parseClamdVersion('ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025'), 'UTC');
    expect(freshnessMetricData(reading, 2, dims, at)).toEqual([
      { MetricName: 'SignatureAgeHours', Dimensions: dims, Unit: 'None', Value: 48, Timestamp: at },
      { MetricName: 'SignatureDatabaseVersion', Dimensions: dims, Unit: 'None', Value: 27471, Timestamp: at },
      { MetricName: 'SignatureUpdates', Dimensions: dims, Unit: 'Count', Value: 2, Timestamp: at },
    ]);
  });

  it('publishes nothing for an unversioned database: its freshness is unknown, not fresh', () => {
    expect(freshnessMetricData(freshnessReading(parseClamdVersion('ClamAV 1.4.6')), 0, dims, at)).toEqual([]);
  });

  it('names the metrics from the one constant', () => {
    expect(Object.values(SIGNATURE_METRICS).sort()).toEqual([
      'SignatureAgeHours',
      'SignatureDatabaseVersion',
      'SignatureUpdates',
    ]);
  });
});

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields?: LogFields;
}

function recordingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const add =
    (level: string) =>
    (message: string, fields?: LogFields): void => {
      lines.push({ level, message, ...(fields ? { fields } : {}) });
    };
  return { log: { info: add('info'), warn: add('warn'), error: add('error') }, lines };
}

describe('startSignatureMonitor', () => {
  const now = new Date('2025-11-27T08:26:02Z');
  const dims = [{ Name: 'Pipeline', Value: 'prod' }];

  function monitor(replies: Array<string | Error>, failedSends: readonly number[] = []) {
    const cloudWatch = mockClient(CloudWatchClient);
    let sends = 0;
    cloudWatch.on(PutMetricDataCommand).callsFake(async () => {
      sends += 1;
      if (failedSends.includes(sends)) throw new Error('throttled');
      return {};
    });
    const { log, lines } = recordingLogger();
    let i = 0;
    const started = startSignatureMonitor({
      readVersion: async () => {
        const reply = replies[Math.min(i, replies.length - 1)];
        i += 1;
        if (reply instanceof Error) throw reply;
        return reply ?? '';
      },
      client: new CloudWatchClient({ region: 'us-east-1' }),
      namespace: 'Scanflow',
      dimensions: dims,
      // Checks run when the test asks: the timer never fires during a test.
      intervalMs: 3_600_000,
      timeZone: 'UTC',
      log,
      now: () => now,
    });
    const sent = () =>
      cloudWatch.commandCalls(PutMetricDataCommand).map((call) => {
        const input = call.args[0].input;
        expect(input.Namespace).toBe('Scanflow');
        return Object.fromEntries((input.MetricData ?? []).map((d) => [d.MetricName, d.Value]));
      });
    return { monitor: started, cloudWatch, lines, sent };
  }

  it('publishes at start, then counts a version change as one update, once', async () => {
    const m = monitor([
      'ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025',
      'ClamAV 1.4.6/27472/Thu Nov 27 02:26:02 2025',
      'ClamAV 1.4.6/27472/Thu Nov 27 02:26:02 2025',
    ]);
    await m.monitor.check(); // the start-up check, already running
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.close();
    expect(m.sent()).toEqual([
      { SignatureAgeHours: 48, SignatureDatabaseVersion: 27471, SignatureUpdates: 0 },
      { SignatureAgeHours: 6, SignatureDatabaseVersion: 27472, SignatureUpdates: 1 },
      { SignatureAgeHours: 6, SignatureDatabaseVersion: 27472, SignatureUpdates: 0 },
    ]);
    expect(m.lines.filter((l) => l.message === 'signature database updated')).toEqual([
      {
        level: 'info',
        message: 'signature database updated',
        fields: { from: 27471, to: 27472, publishedAt: '2025-11-27T02:26:02.000Z' },
      },
    ]);
    m.cloudWatch.restore();
  });

  it('keeps an update counted when its send failed, and sends it with the next one', async () => {
    const m = monitor(['ClamAV 1.4.6/1/Tue Nov 25 08:26:02 2025', 'ClamAV 1.4.6/2/Tue Nov 25 08:26:02 2025'], [2]);
    await m.monitor.check();
    await m.monitor.check(); // version 2 seen, its send fails
    await m.monitor.check();
    await m.monitor.close();
    expect(m.sent().map((s) => s.SignatureUpdates)).toEqual([0, 1, 1]);
    expect(m.lines.some((l) => l.message === 'signature metrics not sent')).toBe(true);
    m.cloudWatch.restore();
  });

  it('publishes nothing for an unversioned database and says so once', async () => {
    const m = monitor(['ClamAV 1.4.6\0']);
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.close();
    expect(m.sent()).toEqual([]);
    expect(m.lines).toEqual([
      {
        level: 'warn',
        message: 'clamd reports no signature database version or date; its freshness is not published',
        fields: { version: 'ClamAV 1.4.6' },
      },
    ]);
    m.cloudWatch.restore();
  });

  it('skips a check whose VERSION fails, logging once per outage, and resumes', async () => {
    const down = new Error('clamd VERSION failed');
    const m = monitor([down, down, 'ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025', down]);
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.close();
    expect(m.sent()).toEqual([{ SignatureAgeHours: 48, SignatureDatabaseVersion: 27471, SignatureUpdates: 0 }]);
    expect(m.lines.filter((l) => l.message.startsWith('signature freshness not checked'))).toHaveLength(2);
    m.cloudWatch.restore();
  });

  it('warns once when the date is ahead of the clock (a wrong CLAMD_TIME_ZONE), and still publishes it', async () => {
    const m = monitor(['ClamAV 1.4.6/27471/Thu Nov 27 10:26:02 2025']);
    await m.monitor.check();
    await m.monitor.check();
    await m.monitor.close();
    expect(m.sent()).toEqual([
      { SignatureAgeHours: -2, SignatureDatabaseVersion: 27471, SignatureUpdates: 0 },
      { SignatureAgeHours: -2, SignatureDatabaseVersion: 27471, SignatureUpdates: 0 },
    ]);
    expect(m.lines.filter((l) => l.message.includes('in the future'))).toHaveLength(1);
    m.cloudWatch.restore();
  });
});

describe('startSignatureMonitor shutdown', () => {
  it('close() does not wait for a VERSION that clamd never answers, and sends nothing after it', async () => {
    const cloudWatch = mockClient(CloudWatchClient);
    cloudWatch.on(PutMetricDataCommand).resolves({});
    let answer: ((reply: string) => void) | undefined;
    const monitor = startSignatureMonitor({
      readVersion: () =>
        new Promise<string>((resolve) => {
          answer = resolve;
        }),
      client: new CloudWatchClient({ region: 'us-east-1' }),
      namespace: 'Scanflow',
      dimensions: [],
      intervalMs: 3_600_000,
      log: recordingLogger().log,
    });
    await monitor.close();
    answer?.('ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025');
    await monitor.check();
    expect(cloudWatch.commandCalls(PutMetricDataCommand)).toEqual([]);
    cloudWatch.restore();
  });
});

describe('unsignedDatabase (.cud)', () => {
  const publishedAt = new Date('2026-11-25T17:08:00Z');
  const files = { 'daily.hdb': '44d88612fea8a8f36de82e1278abb02f:68:Test.Sig\n' };
  const cud = unsignedDatabase({ name: 'daily', version: 42, publishedAt, files });

  it('has the header clamd checks: version, signature count, MD5 of the archive, publication seconds', () => {
    const header = cud.subarray(0, 512).toString('ascii').trimEnd().split(':');
    expect(header).toEqual([
      'ClamAV-VDB',
      '25 Nov 2026 17-08 +0000',
      '42',
      '1',
      '90',
      createHash('md5').update(cud.subarray(512)).digest('hex'),
      'X',
      'scanflow',
      '1795626480',
    ]);
  });

  it('holds daily.info listing each file with its size and SHA-256, then the files', () => {
    const tar = gunzipSync(cud.subarray(512));
    const entry = (offset: number) => ({
      name: tar
        .subarray(offset, offset + 100)
        .toString('ascii')
        .replace(/\0+$/, ''),
      size: Number.parseInt(tar.subarray(offset + 124, offset + 135).toString('ascii'), 8),
    });
    const info = entry(0);
    expect(info.name).toBe('daily.info');
    const infoText = tar.subarray(512, 512 + info.size).toString('ascii');
    const sha = createHash('sha256').update(files['daily.hdb']).digest('hex');
    expect(infoText.split('\n')[1]).toBe(`daily.hdb:${files['daily.hdb'].length}:${sha}`);
    const next = 512 + Math.ceil(info.size / 512) * 512;
    expect(entry(next)).toEqual({ name: 'daily.hdb', size: files['daily.hdb'].length });
  });

  it('refuses what clamd would refuse: no signatures, no valid version', () => {
    expect(() => unsignedDatabase({ name: 'daily', version: 1, publishedAt, files: { 'daily.hdb': '' } })).toThrow();
    expect(() => unsignedDatabase({ name: 'daily', version: 0, publishedAt, files })).toThrow();
  });
});
