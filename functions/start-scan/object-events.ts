/**
 * Turns one scan-requests message body into the objects it announces. Two shapes arrive:
 * - EventBridge "Object Created" events (what the stack routes to the queue), and
 * - classic S3 notification records (`{Records:[{eventSource:'aws:s3', s3:{…}}]}`), for buckets that
 *   already send those to a queue.
 * Key decoding happens here and nowhere else.
 */

export interface AnnouncedObject {
  readonly bucket: string;
  /**
   * Keys to try, most likely first. Classic records URL-encode keys (`+` for space), as documented.
   * EventBridge examples carry keys unencoded, but reports disagree, so both readings are tried there;
   * HeadObject (with the event's version id when there is one) decides which key exists.
   */
  readonly keyCandidates: readonly string[];
  readonly versionId?: string;
  /** As the event carries it: unquoted (HeadObject's ETag header is quoted). */
  readonly etag?: string;
  readonly size?: number;
  /**
   * When the event says the object was created (ISO 8601, as HeadObject's LastModified is rendered): the
   * upload time when no HeadObject can be made (an SSE-C object, a deleted one).
   */
  readonly eventTime?: string;
  /**
   * S3's per-key event order (hex): of two uploads of one key in the same second, the later one has the
   * greater sequencer. Promotion uses it to break that tie.
   */
  readonly sequencer?: string;
}

export type ParsedMessage =
  | { readonly kind: 'objects'; readonly objects: readonly AnnouncedObject[] }
  | { readonly kind: 'ignored'; readonly reason: string };

export class UnrecognisedEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecognisedEventError';
  }
}

/** `application/x-www-form-urlencoded` decoding, as S3 notifications use: `+` is a space. */
export function formUrlDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function tryFormUrlDecode(value: string): string | undefined {
  try {
    return formUrlDecode(value);
  } catch {
    return undefined; // a literal `%` not followed by two hex digits: the key was not encoded
  }
}

function unique(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((value): value is string => value !== undefined && value.length > 0))];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function optionalSize(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/**
 * An event timestamp as an ISO 8601 string with milliseconds, the form `scan-uploaded` is compared in. AWS
 * writes ISO strings (EventBridge `time`, S3 `eventTime`); the local engine writes EventBridge `time` as
 * epoch seconds.
 */
function optionalTime(value: unknown): string | undefined {
  const date =
    typeof value === 'string' && value.length > 0
      ? new Date(value)
      : typeof value === 'number'
        ? new Date(value * 1000)
        : undefined;
  return date !== undefined && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

function parseEventBridge(event: Record<string, unknown>): ParsedMessage {
  if (event['detail-type'] !== 'Object Created') {
    return { kind: 'ignored', reason: `EventBridge ${String(event['detail-type'])} event` };
  }
  const detail = event.detail;
  if (!isRecord(detail) || !isRecord(detail.bucket) || !isRecord(detail.object)) {
    throw new UnrecognisedEventError('EventBridge Object Created event without detail.bucket/detail.object');
  }
  const bucket = optionalString(detail.bucket.name);
  const rawKey = optionalString(detail.object.key);
  if (!bucket || !rawKey) throw new UnrecognisedEventError('EventBridge Object Created event without bucket or key');
  return {
    kind: 'objects',
    objects: [
      {
        bucket,
        keyCandidates: unique([rawKey, tryFormUrlDecode(rawKey)]),
        versionId: optionalString(detail.object['version-id']),
        etag: optionalString(detail.object.etag) ?? optionalString(detail.object.eTag),
        size: optionalSize(detail.object.size),
        eventTime: optionalTime(event.time),
        sequencer: optionalSequencer(detail.object.sequencer),
      },
    ],
  };
}

function optionalSequencer(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9A-Fa-f]{1,64}$/.test(value) ? value.toUpperCase() : undefined;
}

function parseS3Records(records: readonly unknown[]): ParsedMessage {
  const objects: AnnouncedObject[] = [];
  for (const record of records) {
    if (!isRecord(record) || record.eventSource !== 'aws:s3' || !isRecord(record.s3)) {
      throw new UnrecognisedEventError('S3 notification record without eventSource aws:s3');
    }
    const eventName = optionalString(record.eventName) ?? '';
    if (!eventName.startsWith('ObjectCreated:')) continue;
    const { bucket, object } = record.s3;
    if (!isRecord(bucket) || !isRecord(object))
      throw new UnrecognisedEventError('S3 record without s3.bucket/s3.object');
    const name = optionalString(bucket.name);
    const rawKey = optionalString(object.key);
    if (!name || !rawKey) throw new UnrecognisedEventError('S3 record without bucket name or key');
    const decoded = tryFormUrlDecode(rawKey);
    if (decoded === undefined) throw new UnrecognisedEventError(`S3 record key is not URL-encoded: ${rawKey}`);
    objects.push({
      bucket: name,
      keyCandidates: [decoded],
      versionId: optionalString(object.versionId),
      etag: optionalString(object.eTag),
      size: optionalSize(object.size),
      eventTime: optionalTime(record.eventTime),
      sequencer: optionalSequencer(object.sequencer),
    });
  }
  return objects.length > 0 ? { kind: 'objects', objects } : { kind: 'ignored', reason: 'no ObjectCreated records' };
}

export function parseScanRequest(body: string): ParsedMessage {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    throw new UnrecognisedEventError('message body is not JSON');
  }
  if (!isRecord(message)) throw new UnrecognisedEventError('message body is not a JSON object');
  // S3 sends this once when a notification configuration is saved.
  if (message.Event === 's3:TestEvent') return { kind: 'ignored', reason: 's3:TestEvent' };
  // An SNS envelope (S3 → SNS → SQS without raw delivery) wraps the notification in Message.
  if (message.Type === 'Notification' && typeof message.Message === 'string') {
    return parseScanRequest(message.Message);
  }
  if (message.source === 'aws.s3' && 'detail-type' in message) return parseEventBridge(message);
  if (Array.isArray(message.Records)) return parseS3Records(message.Records);
  throw new UnrecognisedEventError('neither an EventBridge S3 event nor S3 notification records');
}
