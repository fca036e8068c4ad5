/**
 * The content gate's streaming half: opens gzip and tar as the object streams to clamd, so that what they
 * carry is judged the way a top-level object is (see content-gate.ts). It is fed every byte of the object
 * once, in order, by the worker's ContentTap; nothing is downloaded twice and nothing is written to disk.
 *
 * - gzip (multi-member, as ClamAV reads it) is inflated with node:zlib's streaming gunzip; what comes out
 *   is inspected in turn: a tar is parsed, anything else is classified from its first HEAD_BYTES.
 * - tar is parsed here, header block by header block (see TarSink for why not with a library). Each
 *   member's first HEAD_BYTES are classified with the gate's type table: a format ClamAV does not unpack is
 *   Unscannable `unsupported-format`, naming the member; a zip is buffered (up to maxNestedInflateBytes)
 *   and its directory and local headers inspected in memory; a gzip or tar is opened in turn, up to
 *   maxNestingDepth levels.
 * - Bounds: gunzip output per object stops at maxStreamInflateBytes (`limits-exceeded`, as ClamAV would
 *   report MaxScanSize); memory is one chunk and zlib's 16 KiB buffers per gzip level, plus at most one
 *   buffered zip per level. Each write resolves only once its bytes have been inspected, which is the
 *   backpressure the worker applies to the download (never to the bytes already on their way to clamd).
 * - A gzip stream that does not inflate, or a tar header that does not parse, is `unsupported-format`:
 *   ClamAV could not unpack it honestly either. (The gate is asked only when clamd said OK: measured with
 *   clamd 1.4.6, a truncated or corrupt .tar.gz whose early member is EICAR is still FOUND, and a finding
 *   from clamd always stands.)
 *
 * It can only find reasons to withhold Clean; it never decides Clean on its own.
 */
import { createGunzip, type Gunzip } from 'node:zlib';
import {
  type GateLimits,
  type GateOutcome,
  type GateReason,
  HEAD_BYTES,
  InflateBudget,
  inspectInMemory,
  streamContainerKind,
  UndecodableLocalHeaderSweep,
} from './content-gate.js';

interface Sink {
  /** Resolves when `chunk` has been inspected as far as it can be (a copy may be held: zip buffering). */
  write(chunk: Buffer): Promise<void>;
  end(): Promise<void>;
}

const IGNORE: Sink = { write: () => Promise.resolve(), end: () => Promise.resolve() };

/** A reason found while streaming: it ends the inspection, and travels up through the containers. */
class Finding extends Error {
  constructor(
    readonly reason: GateReason,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'Finding';
  }

  within(label: string): Finding {
    return label === '' ? this : new Finding(this.reason, `${label}: ${this.detail}`);
  }
}

interface StreamContext {
  readonly limits: GateLimits;
  /**
   * Bytes inflated so far, every level together (ClamAV's MaxScanSize counts them together too), shared
   * with what content-gate.ts inflates for the same object.
   */
  readonly budget: InflateBudget;
  readonly gunzips: Set<Gunzip>;
}

/**
 * Inspects one object from its bytes as they stream by. Writes must not overlap (await each one); the
 * object's first bytes decide: gzip and tar are opened, anything else is left to inspectContent.
 */
export class ContainerStreamInspector {
  private readonly context: StreamContext;
  private readonly root: Sink;
  private finding: Finding | undefined;
  private failure: unknown;
  private finished = false;
  private abandoned = false;

  /**
   * @param depth how many containers the content is inside: 0 for an object, one more than the zip's for
   * a gzip or tar member of a zip (content-gate.ts feeds those)
   */
  constructor(limits: GateLimits, depth = 0, budget = new InflateBudget(limits.maxStreamInflateBytes)) {
    this.context = { limits, budget, gunzips: new Set() };
    this.root = new MemberSink(this.context, '', depth, undefined, true);
  }

  /** The outcome is decided (a finding, or a failure): more bytes would change nothing. */
  get concluded(): boolean {
    return this.finished;
  }

  /** Feeds the next bytes of the object; resolves once they are inspected. Never rejects. */
  write(chunk: Buffer): Promise<void> {
    if (this.finished) return Promise.resolve();
    return this.root.write(chunk).catch((error: unknown) => this.stop(error));
  }

  /** The object ended: what the streamed containers say. Rejects only on an error of the gate itself. */
  async end(): Promise<GateOutcome> {
    if (this.abandoned) throw new Error('the content stream was abandoned before its end: nothing to conclude');
    if (!this.finished) {
      try {
        await this.root.end();
      } catch (error) {
        this.stop(error);
      }
      this.finished = true;
    }
    if (this.finding) return { kind: 'unscannable', reason: this.finding.reason, detail: this.finding.detail };
    if (this.failure !== undefined) throw this.failure;
    return { kind: 'scannable' };
  }

  /** The stream was abandoned (clamd answered early, or the download broke): free what is held. */
  abort(): void {
    this.finished = true;
    this.abandoned = true;
    this.release();
  }

  private stop(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (error instanceof Finding) this.finding = error;
    else this.failure = error;
    this.release();
  }

  private release(): void {
    for (const gunzip of this.context.gunzips) gunzip.destroy();
    this.context.gunzips.clear();
  }
}

/**
 * One piece of content (the object, a tar member, a gzip's payload): collects its first HEAD_BYTES, decides
 * from them what it is, and then hands everything to the sink that inspects that kind of content.
 */
class MemberSink implements Sink {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private next: Sink | undefined;

  /**
   * @param label how a finding inside names this content (`tar member "a/b.zst"`); '' for the object
   * @param depth how many containers this content is inside
   * @param declaredSize the size a tar header gave, when known
   * @param root the object itself: only gzip and tar are opened here, inspectContent judges the rest
   */
  constructor(
    private readonly context: StreamContext,
    private readonly label: string,
    private readonly depth: number,
    private readonly declaredSize: number | undefined,
    private readonly root = false,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    try {
      let rest = chunk;
      if (this.next === undefined) {
        const piece = chunk.subarray(0, HEAD_BYTES - this.headBytes);
        this.head.push(piece);
        this.headBytes += piece.length;
        if (this.headBytes < HEAD_BYTES) return;
        rest = chunk.subarray(piece.length);
        await this.decide();
      }
      if (rest.length > 0) await this.next?.write(rest);
    } catch (error) {
      throw error instanceof Finding ? error.within(this.label) : error;
    }
  }

  async end(): Promise<void> {
    try {
      if (this.next === undefined) await this.decide();
      await this.next?.end();
    } catch (error) {
      throw error instanceof Finding ? error.within(this.label) : error;
    }
  }

  /** Chooses the sink from the first bytes, then feeds it those bytes. */
  private async decide(): Promise<void> {
    const head = Buffer.concat(this.head, this.headBytes);
    this.head.length = 0;
    this.next = await this.sinkFor(head);
    if (head.length > 0) await this.next.write(head);
  }

  private async sinkFor(head: Buffer): Promise<Sink> {
    if (head.length === 0) return IGNORE;
    const { limits } = this.context;
    const kind = await streamContainerKind(head);
    if (kind !== undefined && this.depth > limits.maxNestingDepth) {
      throw new Finding(
        'limits-exceeded',
        `${kind} content ${this.depth} levels deep, beyond the ${limits.maxNestingDepth} the gate inspects`,
      );
    }
    if (kind === 'gzip') {
      return new GzipSink(this.context, new MemberSink(this.context, 'gzip content', this.depth + 1, undefined));
    }
    if (kind === 'tar') return new TarSink(this.context, this.depth);
    // The object itself: zips and every other type are judged by inspectContent.
    if (this.root) return IGNORE;
    if (kind === 'zip') {
      if (this.declaredSize !== undefined && this.declaredSize > limits.maxNestedInflateBytes) {
        throw ZipBufferSink.tooLarge(this.declaredSize, limits);
      }
      return new ZipBufferSink(this.context, this.depth);
    }
    // Not a container the gate opens: the type table decides from the first bytes alone.
    const outcome = await inspectInMemory(head, limits, this.depth, this.context.budget);
    if (outcome.kind === 'unscannable') throw new Finding(outcome.reason, outcome.detail);
    return IGNORE;
  }
}

/**
 * A zip inside a tar or gzip: ClamAV unzips it, but whether it can decode every member is only told by
 * its central directory and local headers, which need random access. It is buffered, up to
 * maxNestedInflateBytes, and inspected in memory like a zip inside a zip. A larger one is limits-exceeded
 * without being looked at: conservative, and a false positive for a big, ordinary zip inside a tarball
 * (trading that against reading back through the object with ranged reads into compressed data, which
 * the gate cannot do for a gzip'd tar).
 */
class ZipBufferSink implements Sink {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  static tooLarge(bytes: number, limits: GateLimits): Finding {
    return new Finding(
      'limits-exceeded',
      `a zip of ${bytes} bytes or more inside a tar or gzip, more than the ${limits.maxNestedInflateBytes} bytes the gate holds to inspect`,
    );
  }

  constructor(
    private readonly context: StreamContext,
    private readonly depth: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (this.bytes > this.context.limits.maxNestedInflateBytes)
      throw ZipBufferSink.tooLarge(this.bytes, this.context.limits);
    this.chunks.push(chunk);
  }

  async end(): Promise<void> {
    const content = Buffer.concat(this.chunks, this.bytes);
    this.chunks.length = 0;
    const outcome = await inspectInMemory(content, this.context.limits, this.depth, this.context.budget);
    if (outcome.kind === 'unscannable') throw new Finding(outcome.reason, outcome.detail);
  }
}

/**
 * gzip through node:zlib's streaming gunzip, which reads concatenated members as one stream as ClamAV
 * does. A write resolves once zlib has taken its bytes, and zlib takes more only as its output is
 * inspected (it stops inflating while its 16 KiB output buffer is full), so a bomb never piles up here.
 */
class GzipSink implements Sink {
  private readonly gunzip: Gunzip;
  private readonly consumer: Promise<void>;
  /** A zip hidden anywhere in the gzip's payload is found by ClamAV too; see UndecodableLocalHeaderSweep. */
  private readonly sweep = new UndecodableLocalHeaderSweep();

  constructor(
    private readonly context: StreamContext,
    private readonly payload: Sink,
  ) {
    this.gunzip = createGunzip();
    context.gunzips.add(this.gunzip);
    this.consumer = this.consume();
    // Observed through write() and end(); a rejection nobody awaited yet is not unhandled.
    this.consumer.catch(() => undefined);
  }

  private async consume(): Promise<void> {
    const { limits } = this.context;
    try {
      for await (const piece of this.gunzip as AsyncIterable<Buffer>) {
        if (!this.context.budget.spend(piece.length)) {
          throw new Finding(
            'limits-exceeded',
            `gzip content inflates beyond ${limits.maxStreamInflateBytes} bytes, more than ClamAV scans (MaxScanSize)`,
          );
        }
        this.sweep.push(piece);
        await this.payload.write(piece);
      }
    } catch (error) {
      if (error instanceof Finding) throw error;
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE') {
        // Trailing bytes that are neither a gzip member nor zero padding are an error here too.
        throw new Finding(
          'unsupported-format',
          `gzip stream does not inflate (${(error as Error).message}); ClamAV cannot unpack it either`,
        );
      }
      throw error;
    } finally {
      this.context.gunzips.delete(this.gunzip);
    }
    await this.payload.end();
    // What the payload's own inspection found names it better; this is for zips it did not see as zips.
    const undecodable = this.sweep.found;
    if (undecodable !== undefined) throw new Finding('unsupported-format', `gzip content: ${undecodable}`);
  }

  async write(chunk: Buffer): Promise<void> {
    const taken = new Promise<void>((resolve) => {
      this.gunzip.write(chunk, () => resolve());
    });
    // The consumer ending (with a finding, an error, or the gzip stream's own end) also ends the wait.
    await Promise.race([taken, this.consumer]);
  }

  async end(): Promise<void> {
    this.gunzip.end();
    await this.consumer;
  }
}

const BLOCK = 512;
/** pax and GNU long-name records are read for member names only; longer ones are cut to this. */
const MAX_NAME_RECORD_BYTES = 64 * 1024;

/** Type flags of tar entries that carry no file content for ClamAV to scan (links, devices, directories). */
const NO_CONTENT_TYPES = new Set(['1', '2', '3', '4', '5', '6']);

/**
 * A tar, parsed header by header as it streams by. Hand-written rather than with tar-stream: the gate
 * needs a push parser it can drive from inside an async sink chain with its own backpressure (tar-stream's
 * extractor is a streamx Writable with its own entry streams and callbacks, and 3.x pulls the Bare
 * runtime's bare-fs into the worker bundle), and it needs the fields as ClamAV's untar reads them: the
 * octal size of each ustar header (base-256 for GNU's large sizes), the type flag, the header checksum.
 * pax ('x') and GNU long-name ('L') records are read for member names only.
 */
class TarSink implements Sink {
  private header = Buffer.alloc(0);
  private offset = 0;
  private member: { sink: Sink; left: number } | undefined;
  private record: { kind: 'pax' | 'long-name'; chunks: Buffer[]; bytes: number; left: number } | undefined;
  private skip = 0;
  private ended = false;
  private nextName: string | undefined;

  constructor(
    private readonly context: StreamContext,
    /** The tar's own depth; its members are one deeper. */
    private readonly depth: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      const available = chunk.length - at;
      if (this.member) {
        const member = this.member;
        const take = Math.min(member.left, available);
        member.left -= take;
        at += take;
        await member.sink.write(chunk.subarray(at - take, at));
        if (member.left === 0) {
          this.member = undefined;
          await member.sink.end();
        }
      } else if (this.record) {
        const take = Math.min(this.record.left, available);
        if (this.record.bytes < MAX_NAME_RECORD_BYTES) {
          this.record.chunks.push(Buffer.from(chunk.subarray(at, at + take)));
          this.record.bytes += take;
        }
        this.record.left -= take;
        at += take;
        if (this.record.left === 0) this.endRecord();
      } else if (this.skip > 0) {
        const take = Math.min(this.skip, available);
        this.skip -= take;
        at += take;
      } else {
        const take = Math.min(BLOCK - this.header.length, available);
        this.header = Buffer.concat([this.header, chunk.subarray(at, at + take)]);
        at += take;
        if (this.header.length === BLOCK) {
          const block = this.header;
          this.header = Buffer.alloc(0);
          await this.onHeader(block);
        }
      }
    }
  }

  async end(): Promise<void> {
    if (this.ended) return;
    if (this.member || this.record || this.skip > 0 || this.header.length > 0) {
      // ClamAV's untar stops at the cut as well, so the cut member was not scanned whole.
      throw new Finding(
        'unsupported-format',
        'tar stream ends inside an entry (truncated); ClamAV cannot unpack it either',
      );
    }
    // A tar without its two zero blocks, ending at an entry boundary: every entry was complete.
  }

  private async onHeader(block: Buffer): Promise<void> {
    const position = this.offset;
    this.offset += BLOCK;
    if (block.every((byte) => byte === 0)) {
      // End of archive (ClamAV's untar stops at the first zero block too); padding after it is not content.
      this.ended = true;
      return;
    }
    const header = parseTarHeader(block);
    if (typeof header === 'string') {
      throw new Finding(
        'unsupported-format',
        `tar header ${position === 0 ? 'at the start' : `after ${position} bytes`} ${header}; ClamAV cannot unpack it either`,
      );
    }
    const { limits } = this.context;
    const padding = (BLOCK - (header.size % BLOCK)) % BLOCK;
    this.offset += header.size + padding;
    if (header.type === 'x' || header.type === 'L') {
      this.record = { kind: header.type === 'x' ? 'pax' : 'long-name', chunks: [], bytes: 0, left: header.size };
      if (header.size === 0) this.endRecord();
      this.skip = padding;
      return;
    }
    const name = this.nextName ?? header.name;
    this.nextName = undefined;
    if (NO_CONTENT_TYPES.has(header.type) || header.type === 'g' || header.type === 'K' || header.size === 0) {
      this.skip = header.size + padding;
      return;
    }
    if (header.size > limits.maxMemberBytes) {
      throw new Finding(
        'limits-exceeded',
        `tar member "${name}" holds ${header.size} bytes, more than the ${limits.maxMemberBytes} ClamAV scans per file`,
      );
    }
    // Regular files ('0', NUL, '7') and any type ClamAV does not know, which it extracts as a file too.
    const sink = new MemberSink(this.context, `tar member "${name}"`, this.depth + 1, header.size);
    this.member = { sink, left: header.size };
    this.skip = padding;
  }

  private endRecord(): void {
    const record = this.record;
    this.record = undefined;
    if (!record) return;
    const text = Buffer.concat(record.chunks, record.bytes).toString('utf8');
    if (record.kind === 'long-name') {
      this.nextName = text.replace(/\0.*$/s, '');
      return;
    }
    // pax records: "<length> <key>=<value>\n"
    const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text)?.[1];
    if (path !== undefined) this.nextName = path;
  }
}

interface TarHeader {
  readonly name: string;
  readonly size: number;
  readonly type: string;
}

/** A ustar/GNU/v7 header block, or why it is not one. */
export function parseTarHeader(block: Buffer): TarHeader | string {
  const checksum = parseOctal(block.subarray(148, 156));
  if (checksum === undefined) return 'has no checksum';
  let unsigned = 0;
  let signed = 0;
  for (let index = 0; index < BLOCK; index += 1) {
    const byte = index >= 148 && index < 156 ? 0x20 : (block[index] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (checksum !== unsigned && checksum !== signed) return 'fails its checksum';
  const size = parseSize(block.subarray(124, 136));
  if (size === undefined) return 'has no valid size';
  const name = cString(block.subarray(0, 100));
  const ustar = block.subarray(257, 262).toString('latin1') === 'ustar';
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  const typeByte = block[156] as number;
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size,
    type: typeByte === 0 ? '0' : String.fromCharCode(typeByte),
  };
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** An octal field: optional spaces, digits, then NUL or space. */
function parseOctal(field: Buffer): number | undefined {
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (!/^[0-7]+$/.test(text)) return undefined;
  return Number.parseInt(text, 8);
}

/** The size field: octal, or GNU's base-256 (high bit of the first byte set) for sizes over 8 GiB. */
function parseSize(field: Buffer): number | undefined {
  const first = field[0] as number;
  if (first & 0x80) {
    if (first !== 0x80) return undefined;
    let value = 0n;
    for (const byte of field.subarray(1)) value = (value << 8n) | BigInt(byte);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(value);
  }
  return parseOctal(field);
}
