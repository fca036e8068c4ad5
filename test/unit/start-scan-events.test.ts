import { describe, expect, it } from '@jest/globals';
import { formUrlDecode, parseScanRequest, UnrecognisedEventError } from '../../functions/start-scan/object-events.js';

function eventBridge(key: string, detailType = 'Object Created'): string {
  return JSON.stringify({
    version: '0',
    source: 'aws.s3',
    'detail-type': detailType,
    detail: {
      bucket: { name: 'staging' },
      object: { key, size: 12, etag: 'abc', 'version-id': 'v1' },
      reason: 'PutObject',
    },
  });
}

function s3Records(keys: string[], eventName = 'ObjectCreated:Put'): string {
  return JSON.stringify({
    Records: keys.map((key) => ({
      eventSource: 'aws:s3',
      eventName,
      s3: { bucket: { name: 'staging' }, object: { key, size: 3, eTag: 'e', versionId: 'v9' } },
    })),
  });
}

describe('parseScanRequest', () => {
  it('reads an EventBridge Object Created event, trying the key as sent and form-decoded', () => {
    expect(parseScanRequest(eventBridge('a+b%20c.txt'))).toEqual({
      kind: 'objects',
      objects: [
        { bucket: 'staging', keyCandidates: ['a+b%20c.txt', 'a b c.txt'], versionId: 'v1', etag: 'abc', size: 12 },
      ],
    });
  });

  it('keeps a single candidate when decoding changes nothing or is impossible', () => {
    const plain = parseScanRequest(eventBridge('plain/key.txt'));
    const literalPercent = parseScanRequest(eventBridge('100% sure.txt'));
    expect(plain.kind === 'objects' && plain.objects[0]?.keyCandidates).toEqual(['plain/key.txt']);
    expect(literalPercent.kind === 'objects' && literalPercent.objects[0]?.keyCandidates).toEqual(['100% sure.txt']);
  });

  it('decodes classic S3 notification keys once (+ is a space)', () => {
    const parsed = parseScanRequest(s3Records(['dir/red+flower%2B1%25.jpg', 'caf%C3%A9.txt']));
    expect(parsed.kind === 'objects' && parsed.objects.map((o) => o.keyCandidates)).toEqual([
      ['dir/red flower+1%.jpg'],
      ['café.txt'],
    ]);
    expect(parsed.kind === 'objects' && parsed.objects[0]?.versionId).toBe('v9');
  });

  it('unwraps an SNS envelope around S3 records', () => {
    const parsed = parseScanRequest(JSON.stringify({ Type: 'Notification', Message: s3Records(['k']) }));
    expect(parsed.kind === 'objects' && parsed.objects[0]?.keyCandidates).toEqual(['k']);
  });

  it('ignores what is not an object creation', () => {
    expect(parseScanRequest(JSON.stringify({ Event: 's3:TestEvent' })).kind).toBe('ignored');
    expect(parseScanRequest(eventBridge('k', 'Object Deleted')).kind).toBe('ignored');
    expect(parseScanRequest(s3Records(['k'], 'ObjectRemoved:Delete')).kind).toBe('ignored');
  });

  it.each(['not json', '[]', '{"hello":1}', JSON.stringify({ source: 'aws.s3', 'detail-type': 'Object Created' })])(
    'rejects a body it cannot understand (%s)',
    (body) => {
      expect(() => parseScanRequest(body)).toThrow(UnrecognisedEventError);
    },
  );

  it('rejects a classic record whose key is not valid URL encoding', () => {
    expect(() => parseScanRequest(s3Records(['bad%zz']))).toThrow(UnrecognisedEventError);
  });
});

describe('the event time, the upload time when no HeadObject can be made', () => {
  const withTime = (time: unknown) =>
    parseScanRequest(
      JSON.stringify({
        source: 'aws.s3',
        'detail-type': 'Object Created',
        time,
        detail: { bucket: { name: 'staging' }, object: { key: 'k', etag: 'e' } },
      }),
    );

  it.each([
    ['an EventBridge ISO time (AWS)', '2026-03-01T10:20:30Z', '2026-03-01T10:20:30.000Z'],
    ['EventBridge epoch seconds (the local engine)', 1772360430.25, '2026-03-01T10:20:30.250Z'],
  ])('reads %s in the form HeadObject LastModified is written', (_what, time, expected) => {
    const parsed = withTime(time);
    expect(parsed.kind === 'objects' && parsed.objects[0]?.eventTime).toBe(expected);
  });

  it('leaves it out when the time is missing or unreadable', () => {
    for (const time of [undefined, 'yesterday']) {
      const parsed = withTime(time);
      expect(parsed.kind === 'objects' && parsed.objects.length === 1 && parsed.objects[0]?.eventTime).toBeUndefined();
    }
  });

  it('reads eventTime of a classic S3 record', () => {
    const parsed = parseScanRequest(
      JSON.stringify({
        Records: [
          {
            eventSource: 'aws:s3',
            eventName: 'ObjectCreated:Put',
            eventTime: '2026-03-01T10:20:30.123Z',
            s3: { bucket: { name: 'staging' }, object: { key: 'k', eTag: 'e' } },
          },
        ],
      }),
    );
    expect(parsed.kind === 'objects' && parsed.objects[0]?.eventTime).toBe('2026-03-01T10:20:30.123Z');
  });
});

describe('formUrlDecode', () => {
  it('treats + as a space and %2B as a plus', () => {
    expect(formUrlDecode('a+b%2Bc')).toBe('a b+c');
  });
});
