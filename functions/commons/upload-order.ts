/**
 * The order of uploads of one key, as the `scan-uploaded` tag records it: `<upload time>` or
 * `<upload time>/<S3 event sequencer>`. S3 gives upload times to the second; the sequencer, which S3 makes
 * grow with every event of a key, orders two uploads within one second. Promotion compares these so an
 * older upload never replaces a newer one in the destination (scanner-image/src/promotion.ts).
 */

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SEQUENCER = /^[0-9A-F]{1,64}$/;
/**
 * How far ahead of the reader's clock a time may be and still be trusted. Upload times are S3's clock; the
 * worker compares them with its own: without slack, a promotion made a moment ago by an S3 clock slightly
 * ahead would look made up, be ignored, and be overwritten by an older upload.
 */
export const CLOCK_SKEW_TOLERANCE_MS = 15 * 60 * 1000;

export interface UploadOrder {
  /** ISO 8601 with milliseconds (Date.toISOString), so string order is time order. */
  readonly time: string;
  readonly sequencer?: string;
}

/** The tag value for an upload, or undefined when its time is unknown. */
export function formatUploadOrder(object: {
  readonly uploadedAt?: string;
  readonly sequencer?: string;
}): string | undefined {
  if (object.uploadedAt === undefined) return undefined;
  return object.sequencer === undefined ? object.uploadedAt : `${object.uploadedAt}/${object.sequencer}`;
}

/**
 * Reads a `scan-uploaded` value if it is one the pipeline could have written: its format, and a time not
 * later than `now` (plus {@link CLOCK_SKEW_TOLERANCE_MS}, S3's clock and the reader's differ). Anything else (an object someone else wrote with a made-up value) is no record at all, so
 * it can never hold back every later promotion of the key.
 */
export function parseUploadOrder(value: string | undefined, now: Date): UploadOrder | undefined {
  if (value === undefined) return undefined;
  const [time = '', sequencer, extra] = value.split('/');
  if (extra !== undefined || !TIME.test(time)) return undefined;
  if (sequencer !== undefined && !SEQUENCER.test(sequencer)) return undefined;
  const at = Date.parse(time);
  if (Number.isNaN(at) || at > now.getTime() + CLOCK_SKEW_TOLERANCE_MS) return undefined;
  return sequencer === undefined ? { time } : { time, sequencer };
}

/**
 * > 0 when `a` is a later upload than `b`, < 0 when earlier, 0 when it cannot be told (same second and a
 * sequencer missing on either side). Sequencers compare as hexadecimal numbers.
 */
export function compareUploadOrder(a: UploadOrder, b: UploadOrder): number {
  if (a.time !== b.time) return a.time > b.time ? 1 : -1;
  if (a.sequencer === undefined || b.sequencer === undefined) return 0;
  const x = BigInt(`0x${a.sequencer}`);
  const y = BigInt(`0x${b.sequencer}`);
  return x === y ? 0 : x > y ? 1 : -1;
}
