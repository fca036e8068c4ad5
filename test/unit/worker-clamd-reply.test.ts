import { describe, expect, it } from '@jest/globals';
import { mapClamdReply, parseClamdVersion } from '../../scanner-image/src/clamd-reply.js';

describe('mapClamdReply', () => {
  it('maps OK to Clean', () => {
    expect(mapClamdReply('stream: OK\0')).toEqual({ kind: 'verdict', verdict: { verdict: 'Clean' } });
  });

  it('maps a signature to Infected with the signature name', () => {
    expect(mapClamdReply('stream: Win.Test.EICAR_HDB-1 FOUND\0')).toEqual({
      kind: 'verdict',
      verdict: { verdict: 'Infected', signature: 'Win.Test.EICAR_HDB-1' },
    });
    expect(mapClamdReply('stream: Scanflow.Test.EICAR-Body.UNOFFICIAL FOUND')).toMatchObject({
      verdict: { verdict: 'Infected', signature: 'Scanflow.Test.EICAR-Body.UNOFFICIAL' },
    });
  });

  it.each(['Heuristics.Encrypted.Zip', 'Heuristics.Encrypted.RAR', 'Heuristics.Encrypted.PDF'])(
    'maps %s to Unscannable encrypted, keeping the name',
    (name) => {
      expect(mapClamdReply(`stream: ${name} FOUND\0`)).toEqual({
        kind: 'verdict',
        verdict: { verdict: 'Unscannable', reason: 'encrypted', signature: name },
      });
    },
  );

  it.each([
    'Heuristics.Limits.Exceeded.MaxFileSize',
    'Heuristics.Limits.Exceeded.MaxScanSize',
    'Heuristics.Limits.Exceeded.MaxRecursion',
    'Heuristics.Limits.Exceeded.MaxFiles',
    'Heuristics.Limits.Exceeded.MaxScanTime',
  ])('maps %s to Unscannable limits-exceeded', (name) => {
    expect(mapClamdReply(`stream: ${name} FOUND\0`)).toEqual({
      kind: 'verdict',
      verdict: { verdict: 'Unscannable', reason: 'limits-exceeded', signature: name },
    });
  });

  it('treats other heuristics as detections, never as Clean', () => {
    expect(mapClamdReply('stream: Heuristics.Phishing.Email.SpoofedDomain FOUND')).toMatchObject({
      verdict: { verdict: 'Infected' },
    });
  });

  it('maps the INSTREAM size limit ERROR to Unscannable too-large', () => {
    expect(mapClamdReply('INSTREAM size limit exceeded. ERROR\0')).toEqual({
      kind: 'verdict',
      verdict: { verdict: 'Unscannable', reason: 'too-large' },
    });
  });

  it.each([
    ['another ERROR', "stream: Can't allocate memory ERROR\0"],
    ['a read timeout', 'COMMAND READ TIMED OUT'],
    ['an empty reply', ''],
    ['an unknown command', 'UNKNOWN COMMAND'],
    ['a reply cut short', 'stream: O'],
  ])('maps %s to unavailable (retried), never to a verdict', (_what, reply) => {
    expect(mapClamdReply(reply).kind).toBe('unavailable');
  });
});

describe('parseClamdVersion', () => {
  it('reads engine, database version and date', () => {
    expect(parseClamdVersion('ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025\0')).toEqual({
      engine: 'ClamAV 1.4.6',
      databaseVersion: '27471',
      databaseDate: 'Tue Nov 25 08:26:02 2025',
    });
  });

  it('reports an unversioned DB (the project test DB) as unknown', () => {
    expect(parseClamdVersion('ClamAV 1.4.6')).toEqual({ engine: 'ClamAV 1.4.6', databaseVersion: 'unknown' });
  });

  it('rejects a reply that is not a version', () => {
    expect(() => parseClamdVersion('UNKNOWN COMMAND')).toThrow(/unexpected clamd VERSION reply/);
  });
});
