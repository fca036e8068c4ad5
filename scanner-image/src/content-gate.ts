/**
 * The content gate: decides whether clamd's `OK` may stand as Clean. clamd answers OK for content it never
 * unpacked (measured with clamd 1.4.6 and scanner-image/clamd.conf): zip members compressed with methods its
 * unzip cannot decode (LZMA 14, PPMd 98, …), zips that use zip64 records (a 3 GiB member recorded the way
 * Python's zipfile writes it: OK in 0.1 s), and whole files in compression formats it does not know (.lzma,
 * .zst, .lz, .Z, raw zlib, ar/deb). The gate looks at what the object is and, for zips, at what the central
 * directory and each local header declare, and turns such a Clean into Unscannable. It never makes anything
 * Clean.
 *
 * Archives delivered inside gzip and tar (tar.gz/tgz, gzip in gzip, tar in tar, zips in either) are
 * opened as the object streams to clamd (content-gate-stream.ts): each tar member and each gzip payload is
 * judged by the same type table as a top-level object, and a zip among them by its directory and local
 * headers, held in memory up to maxNestedInflateBytes (a larger one is limits-exceeded).
 *
 * Every zip member is judged by its content, whatever its name: its first HEAD_BYTES (a stored member's
 * bytes, a deflated member's inflated from at most MAX_HEAD_INPUT_BYTES of its data) are classified with
 * the same type table as a whole object, and a member that is a zip is opened and inspected in turn. In
 * the worker these first bytes are taken as the object streams to clamd (LocalHeaderIndex), so judging
 * them costs no request; elsewhere they come with the ranged read of the member's local header. A member
 * that is gzip or tar is opened too: its data (one ranged read, at most maxNestedInflateBytes; a larger
 * member is limits-exceeded unread, a conservative false positive for a big ordinary tarball) is fed,
 * inflated if deflated, to a ContainerStreamInspector one level deeper, so what it holds is judged exactly
 * as the gzip and tar layers of a streamed object are, under the same nesting and inflate bounds.
 *
 * What it does not see (measured OK with clamd 1.4.6 all the same): 7z archives whose coders are BZip2 or
 * Deflate (reading a 7z's coder list needs an LZMA decoder for its packed header); archives inside bzip2,
 * xz, 7z, cab or RAR (those outer layers are not opened); the content of zip members compressed with
 * implode (6), deflate64 (9) or bzip2 (12), which ClamAV decodes and Node cannot: they pass unjudged, so
 * a zstd stream inside a bzip2 member, or a tar inside a deflate64 one, is not seen (calling every such member
 * Unscannable would turn ordinary 7-Zip and Windows deflate64 archives into false Unscannables, and
 * decoding them needs a decoder the worker does not carry); raw deflate and brotli, which have no header
 * to recognise; zip local entries missing from the central directory.
 *
 * Pure logic over a RangeReader: no AWS types here (scan-object.ts supplies ranged GetObject calls).
 */
import { constants, createInflateRaw, inflateRawSync, inflateSync } from 'node:zlib';
import { fileTypeFromBuffer } from 'file-type';
import { ContainerStreamInspector } from './content-gate-stream.js';

/** Random access to the object being judged. */
export interface RangeReader {
  readonly size: number;
  /** Bytes `start`…`endInclusive`; rejects rather than returning fewer bytes. */
  read(start: number, endInclusive: number, signal?: AbortSignal): Promise<Buffer>;
}

export type GateReason = 'unsupported-format' | 'limits-exceeded' | 'encrypted';

export type GateOutcome =
  | { readonly kind: 'scannable' }
  | { readonly kind: 'unscannable'; readonly reason: GateReason; readonly detail: string };

export interface GateLimits {
  /** Largest member ClamAV scans completely (CLAMAV_MAX_FILE_BYTES); a zip member declaring more is not. */
  readonly maxMemberBytes: number;
  /** Largest zip central directory the gate reads (in windows of DIRECTORY_WINDOW_BYTES, never whole). */
  readonly maxDirectoryBytes: number;
  /** Zips inside zips inspected this many levels down; an archive member deeper than that is not inspected. */
  readonly maxNestingDepth: number;
  /** Archive members (zip, gzip or tar) per zip the gate opens to look inside (each costs a ranged read or two). */
  readonly maxNestedMembers: number;
  /**
   * A deflated member that is itself an archive is inflated in memory up to this size to be inspected; a
   * zip inside a tar or gzip is held in memory up to this size to be inspected; a gzip or tar member of a
   * zip is read into memory up to this size (of its data in the zip) to be opened.
   */
  readonly maxNestedInflateBytes: number;
  /**
   * Most bytes gunzipped per object while it streams (every gzip level together): ClamAV's MaxScanSize,
   * beyond which ClamAV does not scan either.
   */
  readonly maxStreamInflateBytes: number;
  /**
   * Local headers read with ranged reads, per archive, when no LocalHeaderIndex saw them go by (nested
   * archives, or an index that overflowed). Each one is a request.
   */
  readonly maxLocalHeaderReads: number;
  /**
   * Members per zip whose content the gate judges from their first bytes. clamd's MaxFiles (10,000): a zip
   * with more members than that is reported by clamd itself, so more members here and an OK is not trusted.
   */
  readonly maxJudgedMembers: number;
}

/** How many first bytes the gate wants in `head`: what file-type reads to recognise a type. */
export const HEAD_BYTES = 4100;

/** Bytes per ranged read of a zip central directory: one read for almost every real zip, bounded memory. */
const DIRECTORY_WINDOW_BYTES = 1024 * 1024;
/** EOCD record (22 bytes) plus the longest comment (65,535) after it. */
const EOCD_SEARCH_BYTES = 22 + 0xffff;

const SCANNABLE: GateOutcome = { kind: 'scannable' };

function unscannable(reason: GateReason, detail: string): GateOutcome {
  return { kind: 'unscannable', reason, detail };
}

/**
 * What each type file-type can report means for ClamAV. Every extension file-type 21 knows is listed
 * (a unit test holds this table to `supportedExtensions`), so a newer file-type that learns a new format
 * fails that test instead of letting the format pass unexamined; at run time an unlisted type is treated
 * as a format ClamAV does not unpack.
 *
 * - `zip`: a zip container (or zip-based document); its central directory is inspected.
 * - `clamav-unpacks`: a container or compressed format ClamAV opens (libclamav: gzip, bzip2, xz, 7z, tar,
 *   cpio, cab, CHM, OLE2, PDF, DMG, ARJ, RAR with libclamunrar, SWF, RTF); passes.
 * - `unsupported`: a compression or archive format ClamAV does not open; Unscannable `unsupported-format`.
 * - `encrypted`: encrypted content; Unscannable `encrypted`.
 * - `plain`: not a container; ClamAV scans the bytes themselves; passes.
 */
type FormatClass = 'zip' | 'clamav-unpacks' | 'unsupported' | 'encrypted' | 'plain';

// biome-ignore format: a table reads better packed, one kind of format per line
const FORMAT_CLASSES: Readonly<Record<FormatClass, readonly string[]>> = {
  zip: [
    'zip', 'jar', 'apk', 'xpi', 'crx', 'epub', '3mf', 'vsdx',
    'docx', 'docm', 'dotx', 'dotm', 'xlsx', 'xlsm', 'xltx', 'xltm', 'pptx', 'pptm', 'potx', 'potm', 'ppsx', 'ppsm',
    'odt', 'ods', 'odp', 'odg', 'ott', 'ots', 'otp', 'otg',
  ],
  // RAR: the scanner image's ClamAV has libclamunrar; a clamd without it (Debian's clamav package) does not
  // unpack RAR, and this table cannot tell which clamd it runs against.
  'clamav-unpacks': [
    'gz', 'tar.gz', 'bz2', 'xz', '7z', 'tar', 'cpio', 'cab', 'chm', 'cfb', 'pdf', 'dmg', 'arj', 'rar', 'swf', 'rtf',
  ],
  unsupported: ['zst', 'lz', 'lz4', 'Z', 'lzh', 'ace', 'ar', 'deb', 'rpm', 'asar', 'pst'],
  encrypted: ['pgp'],
  plain: [
    // images
    'jpg', 'png', 'apng', 'gif', 'webp', 'flif', 'xcf', 'cr2', 'cr3', 'orf', 'arw', 'dng', 'nef', 'rw2', 'raf',
    'tif', 'bmp', 'icns', 'jxr', 'psd', 'indd', 'bpg', 'j2c', 'jp2', 'jpm', 'jpx', 'mj2', 'heic', 'cur', 'ico',
    'ktx', 'avif', 'jxl', 'jls', 'eps', 'ps', 'dcm', 'icc',
    // audio and video
    'mp4', 'mid', 'mkv', 'webm', 'mov', 'avi', 'mpg', 'mp2', 'mp3', 'm4a', 'oga', 'ogg', 'ogv', 'opus', 'flac',
    'wav', 'spx', 'amr', 'flv', 'mxf', 'mts', '3gp', '3g2', 'aif', 'qcp', 'ape', 'wv', 'dsf', 'voc', 'ac3',
    'm4v', 'm4p', 'm4b', 'f4v', 'f4p', 'f4b', 'f4a', 'asf', 'ogm', 'ogx', 'mpc', 'aac', 'mp1', 'it', 's3m',
    'xm', 'rm',
    // executables and code, which ClamAV parses itself
    'elf', 'macho', 'exe', 'wasm', 'class', 'nes', 'lnk', 'alias', 'reg', 'dat',
    // fonts, documents, data
    'woff', 'woff2', 'eot', 'ttf', 'otf', 'ttc', 'xml', 'mobi', 'ics', 'vcf', 'vtt', 'sqlite', 'pcap', 'arrow',
    'parquet', 'avro', 'shp', 'mie', 'blend', 'glb', 'stl', 'skp', 'dwg', 'fbx', 'drc', 'jmp', 'sav',
  ],
};

const CLASS_OF_EXTENSION: ReadonlyMap<string, FormatClass> = new Map(
  (Object.entries(FORMAT_CLASSES) as Array<[FormatClass, readonly string[]]>).flatMap(([formatClass, extensions]) =>
    extensions.map((extension) => [extension, formatClass] as const),
  ),
);

/** Every extension the table classifies (for the test that holds it to file-type's list). */
export const CLASSIFIED_EXTENSIONS: ReadonlySet<string> = new Set(CLASS_OF_EXTENSION.keys());

/**
 * Zip compression methods ClamAV's unzip decodes (libclamav/unzip.c `unz`): stored 0, implode 6, deflate 8,
 * deflate64 9, bzip2 12. Measured with clamd 1.4.6: 0, 8, 9, 12 found EICAR; LZMA 14 and PPMd 98 answered OK.
 * Implode is taken from the source (no tool here writes it); shrink 1 and reduce 2-5 are listed there as
 * unsupported.
 */
const CLAMAV_ZIP_METHODS: ReadonlySet<number> = new Set([0, 6, 8, 9, 12]);
const ZIP_METHOD_NAMES: Readonly<Record<number, string>> = {
  1: 'shrink',
  2: 'reduce',
  3: 'reduce',
  4: 'reduce',
  5: 'reduce',
  10: 'PKWARE DCL implode',
  14: 'LZMA',
  18: 'IBM TERSE',
  19: 'IBM LZ77',
  20: 'zstd (deprecated id)',
  93: 'zstd',
  94: 'MP3',
  95: 'xz',
  96: 'JPEG',
  97: 'WavPack',
  98: 'PPMd',
};

/**
 * Decides whether content clamd called OK was really scanned. `head` is the object's first bytes (up to
 * HEAD_BYTES; all of it for a smaller object); `reader` reads any other range (only zips need it).
 * `localHeaders`, when given, holds the zip local headers and the members' first bytes seen while the
 * object streamed past (see LocalHeaderIndex; end() it first), which saves ranged reads per zip member.
 */
export async function inspectContent(
  head: Buffer,
  reader: RangeReader,
  limits: GateLimits,
  signal?: AbortSignal,
  localHeaders?: LocalHeaderIndex,
  /** Shared with the object's ContainerStreamInspector, so the streamed layers count too. */
  budget: InflateBudget = new InflateBudget(limits.maxStreamInflateBytes),
): Promise<GateOutcome> {
  // A small object is entirely in `head`: no reads needed.
  const whole = head.length >= reader.size;
  // The member heads the index captured are classified asynchronously.
  if (!whole) await localHeaders?.settled();
  const source = whole ? bufferReader(head.subarray(0, reader.size)) : reader;
  return inspect(head.subarray(0, Math.min(head.length, HEAD_BYTES)), {
    reader: source,
    readsAreRequests: !whole,
    limits,
    depth: 0,
    localHeaders: whole ? undefined : localHeaders,
    budget,
    ...(signal ? { signal } : {}),
  });
}

/**
 * Everything the gate inflates for one object, on every path and at every level together: the streamed
 * gzip layers, nested zip members, gzip and tar members of zips. Per-member bounds alone let members that
 * overlap (several local headers sharing one deflated stream) or repeat multiply the work; one total, at
 * most what ClamAV itself scans (MaxScanSize), cannot be multiplied. Past it: limits-exceeded.
 */
export class InflateBudget {
  private spent = 0;
  constructor(readonly limit: number) {}

  /** Counts `bytes` as inflated; false once the total is above the limit. */
  spend(bytes: number): boolean {
    this.spent += bytes;
    return this.spent <= this.limit;
  }

  get remaining(): number {
    return Math.max(0, this.limit - this.spent);
  }
}

/** One object (or archive member) being inspected, and how to reach its bytes. */
interface Inspection {
  readonly reader: RangeReader;
  /** False when `reader` serves bytes already in memory: then reads cost nothing and are not counted. */
  readonly readsAreRequests: boolean;
  readonly limits: GateLimits;
  /** How many archives this content is nested in. */
  readonly depth: number;
  readonly localHeaders: LocalHeaderIndex | undefined;
  readonly budget: InflateBudget;
  readonly signal?: AbortSignal;
}

async function inspect(head: Buffer, inspection: Inspection): Promise<GateOutcome> {
  const content = await classifyHead(head);
  if (content.kind !== 'container') return content;
  // gzip and tar at the top level are opened as the object streams (content-gate-stream.ts).
  return content.container === 'zip' ? inspectZip(content.type, inspection) : SCANNABLE;
}

/** What content's first bytes say: a container the gate opens, or the gate's outcome for it. */
type HeadClass =
  | { readonly kind: 'container'; readonly container: 'zip' | 'gzip' | 'tar'; readonly type: string }
  | GateOutcome;

/**
 * Classifies content from its first bytes (up to HEAD_BYTES) with the type table: the same question for a
 * whole object, a tar or gzip member and a zip member.
 */
async function classifyHead(head: Buffer): Promise<HeadClass> {
  if (head.length === 0) return SCANNABLE;
  const detected = await fileTypeFromBuffer(head);
  if (detected === undefined) return inspectUndetected(head);
  if (detected.ext === 'gz' || detected.ext === 'tar.gz') return { kind: 'container', container: 'gzip', type: 'gzip' };
  if (detected.ext === 'tar') return { kind: 'container', container: 'tar', type: 'tar' };

  const formatClass = CLASS_OF_EXTENSION.get(detected.ext);
  switch (formatClass) {
    case 'zip':
      return { kind: 'container', container: 'zip', type: detected.ext };
    case 'clamav-unpacks':
    case 'plain':
      return SCANNABLE;
    case 'encrypted':
      return unscannable('encrypted', `${detected.mime} content cannot be decrypted for scanning`);
    case 'unsupported':
      return unscannable('unsupported-format', `${detected.ext} (${detected.mime}) is a format ClamAV does not unpack`);
    default:
      return unscannable(
        'unsupported-format',
        `${detected.ext} (${detected.mime}) is not a type the gate has classified`,
      );
  }
}

/**
 * Formats file-type does not recognise because their headers are too weak to name on their own: raw zlib
 * (2 bytes, one of which is a checksum) and `.lzma` (LZMA-alone: no magic at all). Each is confirmed beyond
 * its header so that text and random binary are not mistaken for them.
 */
function inspectUndetected(head: Buffer): GateOutcome {
  if (head.length >= 8 && (head.readUInt32LE(0) & 0xffff_fff0) === 0x184d_2a50) {
    // zstd and LZ4 frame streams may open with skippable frames (magic 0x184D2A50-5F, RFC 8878 3.1.2; the
    // LZ4 frame format has the same); file-type looks for the data frame's magic at offset 0 only, and
    // `zstd -d` / `lz4 -d` skip these frames and decode what follows (measured: clamd answers OK).
    return unscannable(
      'unsupported-format',
      'a zstd/LZ4 stream opening with a skippable frame, which ClamAV does not decompress',
    );
  }
  if (isZlibStream(head)) {
    return unscannable('unsupported-format', 'a raw zlib stream, which ClamAV does not inflate');
  }
  if (isLzmaAlone(head)) {
    return unscannable('unsupported-format', 'an LZMA (.lzma) stream, which ClamAV does not decompress');
  }
  return SCANNABLE;
}

/** RFC 1950 header (deflate, window ≤ 32 KiB, FCHECK) and a first part that inflates without error. */
export function isZlibStream(head: Buffer): boolean {
  if (head.length < 2) return false;
  const cmf = head[0] as number;
  const flg = head[1] as number;
  if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) return false;
  // FDICT (a preset dictionary) leaves nothing to confirm the header with: random bytes would pass one time
  // in a thousand. Such streams cannot be inflated without their dictionary by anyone, so they are no way
  // to hand content to a reader either.
  if (flg & 0x20) return false;
  try {
    // A prefix of a longer stream inflates as far as it goes with a sync flush; random data fails.
    inflateSync(head, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1024 * 1024 });
    return true;
  } catch (error) {
    // Inflating produced more than the bound: it is zlib.
    return (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
  }
}

/**
 * The LZMA-alone header as liblzma checks it before decoding: a properties byte that encodes lc/lp/pb with
 * lc + lp ≤ 4 and pb ≤ 4, a dictionary size of 2^n or 2^n + 2^(n-1) (at least 4 KiB), an uncompressed size
 * that is unknown (all ones) or between 1 byte and 256 GiB; then the range coder's first byte, which the
 * encoder always writes as 0. Bytes of text can never match (the header needs zero bytes); zero-filled
 * binary headers fail on the size.
 */
export function isLzmaAlone(head: Buffer): boolean {
  if (head.length < 14) return false;
  const properties = head[0] as number;
  const lc = properties % 9;
  const lp = Math.floor(properties / 9) % 5;
  const pb = Math.floor(properties / 45);
  if (pb > 4 || lc + lp > 4) return false;
  const dictionary = head.readUInt32LE(1);
  const validDictionary = Array.from({ length: 20 }, (_, index) => 2 ** (index + 12)).some(
    (power) => dictionary === power || dictionary === power + power / 2,
  );
  if (!validDictionary) return false;
  const size = head.readBigUInt64LE(5);
  if (size !== 0xffff_ffff_ffff_ffffn && (size === 0n || size >= 1n << 38n)) return false;
  return head[13] === 0;
}

/** What the streaming half of the gate (content-gate-stream.ts) opens itself: gzip and tar; zips it buffers. */
export async function streamContainerKind(head: Buffer): Promise<'gzip' | 'tar' | 'zip' | undefined> {
  const detected = await fileTypeFromBuffer(head);
  if (detected === undefined) return undefined;
  if (detected.ext === 'gz' || detected.ext === 'tar.gz') return 'gzip';
  if (detected.ext === 'tar') return 'tar';
  return CLASS_OF_EXTENSION.get(detected.ext) === 'zip' ? 'zip' : undefined;
}

/**
 * Judges content held in memory (a member of a streamed tar or gzip) `depth` containers down: its type
 * from its first bytes, and, for a zip, its directory and local headers. `content` may be just the first
 * HEAD_BYTES of a member that is not a zip: nothing but a zip is read beyond them.
 */
export function inspectInMemory(
  content: Buffer,
  limits: GateLimits,
  depth: number,
  budget: InflateBudget,
): Promise<GateOutcome> {
  return inspect(content.subarray(0, HEAD_BYTES), {
    reader: bufferReader(content),
    readsAreRequests: false,
    limits,
    depth,
    localHeaders: undefined,
    budget,
  });
}

// --- zip ---------------------------------------------------------------------------------------------------

const LOCAL_HEADER_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** The fixed part of a zip local file header: what ClamAV's unzip decides with. */
export interface LocalHeader {
  readonly flags: number;
  readonly method: number;
  /** The 32-bit fields as written (0xFFFFFFFF when the sizes are in a zip64 extra field). */
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly nameBytes: number;
  readonly extraBytes: number;
}

function parseLocalHeader(buffer: Buffer, at: number): LocalHeader {
  return {
    flags: buffer.readUInt16LE(at + 6),
    method: buffer.readUInt16LE(at + 8),
    compressedSize: buffer.readUInt32LE(at + 18),
    uncompressedSize: buffer.readUInt32LE(at + 22),
    nameBytes: buffer.readUInt16LE(at + 26),
    extraBytes: buffer.readUInt16LE(at + 28),
  };
}

/** A member's first bytes as the stream showed them, judged (see LocalHeaderIndex). */
interface CapturedHead {
  /** The local header's method: 0 (stored) or 8 (deflate). */
  readonly method: number;
  /** How many of the member's stored bytes the head was taken from (checked against the central directory). */
  readonly span: number;
  readonly content: HeadClass | 'short' | 'corrupt';
}

/** One member whose first bytes are being taken from the stream. */
class MemberCapture {
  private readonly chunks: Buffer[] = [];
  bytes = 0;
  /** Compressed bytes at which the next inflate attempt is made. */
  nextAttempt = FIRST_HEAD_INPUT_BYTES;
  /** Inflate attempts made to tell whether a local header that went by lies beyond this member's data. */
  decisions = 0;

  constructor(
    readonly headerOffset: number,
    readonly dataStart: number,
    readonly method: number,
    /** The local header's compressed size; undefined with a data descriptor (sizes after the data). */
    readonly knownSize: number | undefined,
  ) {}

  /** The most data bytes this capture takes. */
  get limit(): number {
    const cap = this.method === 0 ? HEAD_BYTES : MAX_HEAD_INPUT_BYTES;
    return Math.min(cap, this.knownSize ?? cap);
  }

  /** Takes this member's bytes from `chunk` (at `chunkOffset` in the stream) that lie before `upTo`. */
  take(chunk: Buffer, chunkOffset: number, upTo: number): void {
    const from = Math.max(chunkOffset, this.dataStart + this.bytes);
    const to = Math.min(chunkOffset + chunk.length, upTo, this.dataStart + this.limit);
    if (to <= from) return;
    this.chunks.push(Buffer.from(chunk.subarray(from - chunkOffset, to - chunkOffset)));
    this.bytes += to - from;
  }

  collected(bytes = this.bytes): Buffer {
    return Buffer.concat(this.chunks, this.bytes).subarray(0, bytes);
  }
}

/** Inflate attempts per data-descriptor member spent on telling whether a header lies beyond its data. */
const MAX_CAPTURE_DECISIONS = 8;

/**
 * Notes every zip local header signature in a byte stream as it goes by (fed chunk by chunk), keyed by its
 * offset, so the gate can check each member's local header without a ranged read per member. ClamAV decodes
 * a member with the method and sizes of its local header, not its central directory entry, and the two may
 * disagree. Hits inside compressed data are recorded too and simply never looked up. Memory is bounded by
 * `maxHeaders`; past it the index says so and the gate falls back to ranged reads.
 *
 * It also takes each member's first bytes as they go by (stored: the first HEAD_BYTES; deflate: inflated
 * from at most MAX_HEAD_INPUT_BYTES of compressed data until HEAD_BYTES come out) and classifies them with
 * the gate's type table, so that every member is judged by its content without a request per member. One
 * member is captured at a time (zip members follow each other in the stream): a header inside the data of
 * the member being captured, or inside a member whose size its local header gives, is nested content and
 * starts no capture. With a data descriptor the member's end is not in its local header: a stored one ends
 * at the next plausible local header, a deflated one where its deflate stream ends (asked of zlib when a
 * header goes by, at most MAX_CAPTURE_DECISIONS times). A member the capture missed or took uncertain
 * bytes for is read with a ranged read instead. Memory: one capture (≤ MAX_HEAD_INPUT_BYTES) and the
 * heads of one chunk's members waiting to be classified; what is kept per member is its classification.
 * Classification is asynchronous: await `settled()` before looking heads up.
 */
export class LocalHeaderIndex {
  private readonly headers = new Map<number, LocalHeader>();
  private readonly heads = new Map<number, CapturedHead>();
  private readonly scan = new LocalHeaderScan();
  private overflowed = false;
  /** Stream offset of the next chunk. */
  private streamOffset = 0;
  private capture: MemberCapture | undefined;
  /** Headers before this offset are inside the data of a member whose size its local header gave. */
  private regionEnd = -1;
  private classifying: Promise<void> = Promise.resolve();

  constructor(private readonly maxHeaders = 200_000) {}

  push(chunk: Buffer): void {
    const chunkOffset = this.streamOffset;
    this.streamOffset += chunk.length;
    this.scan.push(chunk, (data, at, offset) => {
      const local = parseLocalHeader(data, at);
      if (this.headers.size < this.maxHeaders) this.headers.set(offset, local);
      else this.overflowed = true;
      if (isPlausibleLocalHeader(data, at)) {
        // The capture takes its bytes up to this header first: they may complete it.
        this.capture?.take(chunk, chunkOffset, offset);
        this.progress();
        this.onHeader(offset, local);
      }
      return false;
    });
    this.capture?.take(chunk, chunkOffset, Number.POSITIVE_INFINITY);
    this.progress();
  }

  /** The stream ended: judges the member being captured with what it got. */
  end(): void {
    const capture = this.capture;
    if (capture === undefined) return;
    this.capture = undefined;
    if (capture.method === 0) this.finish(capture, storedHead(capture.collected()), capture.bytes);
    else this.finish(capture, inflateHead(capture.collected(), false), capture.bytes);
  }

  /** Resolves once every captured head is classified. */
  settled(): Promise<void> {
    return this.classifying;
  }

  /** The header at `offset`, or undefined if none was seen there (or the index was full). */
  at(offset: number): LocalHeader | undefined {
    return this.headers.get(offset);
  }

  /** What the first bytes of the member whose local header is at `offset` were judged to be, if captured. */
  memberHead(offset: number): CapturedHead | undefined {
    return this.heads.get(offset);
  }

  get complete(): boolean {
    return !this.overflowed;
  }

  private onHeader(offset: number, local: LocalHeader): void {
    const capture = this.capture;
    if (capture !== undefined) {
      if (capture.knownSize !== undefined || offset <= capture.dataStart) return;
      if (capture.method === 0) {
        // A stored member with a data descriptor ends where the next header starts (less its descriptor).
        this.capture = undefined;
        const member = withoutDataDescriptor(capture.collected(Math.min(capture.bytes, offset - capture.dataStart)));
        this.finish(capture, storedHead(member), member.length);
      } else {
        if (capture.decisions >= MAX_CAPTURE_DECISIONS) return;
        capture.decisions += 1;
        const inflated = inflateHead(capture.collected(Math.min(capture.bytes, offset - capture.dataStart)), false);
        const done = inflated === 'corrupt' || inflated.ended || inflated.head.length >= HEAD_BYTES;
        if (!done) return;
        this.capture = undefined;
        this.finish(capture, inflated, capture.bytes);
        // Enough came out before the stream ended: this header is inside the member's data.
        if (inflated !== 'corrupt' && !inflated.ended) return;
      }
    } else if (offset < this.regionEnd) {
      return;
    }
    const dataStart = offset + 30 + local.nameBytes + local.extraBytes;
    const descriptor = (local.flags & DATA_DESCRIPTOR_FLAG) !== 0;
    const zip64 = local.compressedSize === 0xffff_ffff;
    const knownSize = descriptor || zip64 ? undefined : local.compressedSize;
    this.regionEnd = knownSize === undefined ? -1 : dataStart + knownSize;
    const captured = (local.method === 0 || local.method === 8) && (local.flags & ENCRYPTION_FLAGS) === 0;
    if (!captured || this.heads.size >= this.maxHeaders) return;
    this.capture = new MemberCapture(offset, dataStart, local.method, knownSize);
  }

  /** Completes the capture once it has what it came for. */
  private progress(): void {
    const capture = this.capture;
    if (capture === undefined) return;
    if (capture.method === 0) {
      if (capture.bytes < capture.limit) return;
      this.capture = undefined;
      this.finish(capture, storedHead(capture.collected()), capture.bytes);
      return;
    }
    const all = capture.bytes >= capture.limit;
    if (!all && capture.bytes < capture.nextAttempt) return;
    const inflated = inflateHead(
      capture.collected(),
      capture.knownSize !== undefined && capture.bytes >= capture.knownSize,
    );
    if (!all && inflated !== 'corrupt' && !inflated.ended && inflated.head.length < HEAD_BYTES) {
      capture.nextAttempt *= 2;
      return;
    }
    this.capture = undefined;
    this.finish(capture, inflated, capture.bytes);
  }

  private finish(capture: MemberCapture, inflated: InflatedHead, span: number): void {
    const { headerOffset, method } = capture;
    if (inflated === 'corrupt') {
      this.heads.set(headerOffset, { method, span, content: 'corrupt' });
      return;
    }
    if (inflated.head.length < HEAD_BYTES && !inflated.ended) {
      this.heads.set(headerOffset, { method, span, content: 'short' });
      return;
    }
    const { head } = inflated;
    this.classifying = this.classifying.then(async () => {
      try {
        this.heads.set(headerOffset, { method, span, content: await classifyHead(head) });
      } catch {
        // Not classified: the gate reads this member's first bytes itself.
      }
    });
  }
}

/** A stored member's first bytes: all there are. */
function storedHead(bytes: Buffer): InflatedHead {
  return { head: bytes.subarray(0, HEAD_BYTES), ended: true };
}

/**
 * A stored member's bytes up to the next local header end with its data descriptor (APPNOTE 4.3.9: an
 * optional signature, CRC-32, compressed and uncompressed size, 32- or 64-bit); it is recognised by the
 * compressed size it records being the length before it.
 */
function withoutDataDescriptor(bytes: Buffer): Buffer {
  const n = bytes.length;
  const candidates: Array<[number, (at: number) => number]> = [
    [24, (at) => (bytes.readUInt32LE(at) === 0x08074b50 ? Number(bytes.readBigUInt64LE(at + 8)) : -1)],
    [16, (at) => (bytes.readUInt32LE(at) === 0x08074b50 ? bytes.readUInt32LE(at + 8) : -1)],
    [12, (at) => bytes.readUInt32LE(at + 4)],
  ];
  for (const [size, compressedSize] of candidates) {
    if (n >= size && compressedSize(n - size) === n - size) return bytes.subarray(0, n - size);
  }
  return bytes;
}

/** Compressed bytes of a deflated member the gate inflates, at most, to reach its first HEAD_BYTES. */
const MAX_HEAD_INPUT_BYTES = 64 * 1024;
/**
 * Compressed bytes first tried: HEAD_BYTES of incompressible content take HEAD_BYTES plus a stored block's
 * 5-byte header; compressible content takes fewer.
 */
const FIRST_HEAD_INPUT_BYTES = HEAD_BYTES + 128;
/** Output bound of one inflate attempt: a prefix that inflates to more (a bomb) is cut shorter. */
const PROBE_OUTPUT_BYTES = 256 * 1024;

/** A member's first bytes, and whether its data ended within the bytes given; 'corrupt' if they do not inflate. */
type InflatedHead = { readonly head: Buffer; readonly ended: boolean } | 'corrupt';

/**
 * Inflates the start of a raw deflate stream for its first HEAD_BYTES. `compressed` is a prefix of the
 * member's data (or all of it: `complete`); it may run on past the stream's end (a data descriptor, the
 * next header), which zlib leaves unread, and that is how the end is seen. Bounded: each attempt yields at
 * most PROBE_OUTPUT_BYTES; a prefix that inflates to more is halved towards one that does not (output
 * grows with the prefix, at most 1032 bytes per compressed byte, so one is always found).
 */
export function inflateHead(compressed: Buffer, complete: boolean): InflatedHead {
  let low = 0;
  let high = compressed.length + 1;
  let length = compressed.length;
  let best: Buffer = Buffer.alloc(0);
  for (;;) {
    try {
      const { buffer, engine } = inflateRawSync(compressed.subarray(0, length), {
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: PROBE_OUTPUT_BYTES,
        info: true,
      }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      const ended = engine.bytesWritten < length || (complete && length === compressed.length);
      if (buffer.length >= HEAD_BYTES || ended || length === compressed.length) {
        return { head: Buffer.from(buffer.subarray(0, HEAD_BYTES)), ended };
      }
      low = length;
      best = buffer;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') return 'corrupt';
      high = length;
    }
    if (high - low <= 1) return { head: Buffer.from(best), ended: false };
    length = Math.floor((low + high) / 2);
  }
}

/** A local header signature that looks like a real header: a version up to 6.3, a name of 1 to 1024 bytes. */
function isPlausibleLocalHeader(data: Buffer, at: number): boolean {
  const nameBytes = data.readUInt16LE(at + 26);
  return (data.readUInt16LE(at + 4) & 0xff) <= 63 && nameBytes >= 1 && nameBytes <= 1024;
}

/**
 * Finds zip local header signatures with their 30 fixed bytes in a stream fed chunk by chunk, across chunk
 * boundaries: what could still start a header (a signature prefix, or a header whose fixed part is cut) is
 * carried into the next chunk. The one scanner behind LocalHeaderIndex and UndecodableLocalHeaderSweep.
 */
class LocalHeaderScan {
  private carry: Buffer = Buffer.alloc(0);
  private carryOffset = 0;

  /**
   * Calls `found(data, at, offset)` for each header in the carry plus `chunk`: `data` holds its fixed part
   * at `at`, `offset` is its position in the stream. `found` returning true stops the scan for good.
   */
  push(chunk: Buffer, found: (data: Buffer, at: number, offset: number) => boolean): void {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const dataOffset = this.carryOffset;
    let from = 0;
    for (;;) {
      const at = data.indexOf(LOCAL_HEADER_SIGNATURE, from);
      if (at === -1 || at + 30 > data.length) {
        const keepFrom = at === -1 ? Math.max(from, data.length - 3) : at;
        this.carry = Buffer.from(data.subarray(keepFrom));
        this.carryOffset = dataOffset + keepFrom;
        return;
      }
      if (found(data, at, dataOffset + at)) {
        this.carry = Buffer.alloc(0);
        return;
      }
      from = at + 1;
    }
  }
}

/**
 * Watches a byte stream for zip local headers that declare a compression method ClamAV cannot decode,
 * wherever they are: ClamAV finds a zip by its local header signature anywhere in a file (a self-extractor
 * stub, a PNG or text before it, a zip appended to a gzip) and walks local headers that no central
 * directory lists, and for such a member it answers OK without decoding it (measured with clamd 1.4.6: an
 * LZMA member behind 100 bytes of text, an MZ stub or a PNG; an LZMA local entry missing from the central
 * directory). The central directory checks in inspectZip see none of these. A hit must look like a real
 * header (a version needed to extract up to 6.3, a name of 1 to 1024 bytes, a method that exists), so
 * compressed bytes that happen to hold the signature do not count. Memory: 29 bytes of carry.
 */
export class UndecodableLocalHeaderSweep {
  private readonly scan = new LocalHeaderScan();
  private first: string | undefined;

  /** What the first undecodable header seen so far says, if any. */
  get found(): string | undefined {
    return this.first;
  }

  /** Feeds the next bytes; returns what the first undecodable header found so far says, if any. */
  push(chunk: Buffer): string | undefined {
    if (this.first !== undefined) return this.first;
    this.scan.push(chunk, (data, at, offset) => {
      const local = parseLocalHeader(data, at);
      const name = ZIP_METHOD_NAMES[local.method];
      if (!isPlausibleLocalHeader(data, at) || CLAMAV_ZIP_METHODS.has(local.method) || name === undefined) {
        return false;
      }
      this.first = `a zip local header at byte ${offset} declares compression method ${local.method} (${name}), which ClamAV does not decode`;
      return true;
    });
    return this.first;
  }
}

interface ZipDirectory {
  /** Where the central directory really starts (after any bytes prepended to the zip). */
  readonly start: number;
  readonly bytes: number;
  readonly entries: number;
  /** Added to every offset the zip records: bytes prepended to it (self-extractor stub, CRX header). */
  readonly shift: number;
  readonly zip64: boolean;
}

interface ZipEntry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Where the member's local header is in the file (prepended bytes included). */
  readonly localHeaderOffset: number;
  /** Some size or offset was recorded in a zip64 extra field. */
  readonly zip64: boolean;
  /** Name and extra field lengths in the directory (the local header's usually match). */
  readonly nameBytes: number;
  readonly extraBytes: number;
}

/** The zip cannot be read as a zip: ClamAV could not unpack it honestly either. */
class UnreadableZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableZipError';
  }
}

/** A limit of the gate itself was reached: what lies beyond it was not inspected. */
class GateLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GateLimitError';
  }
}

/**
 * The central directory is parsed here rather than through @zip.js/zip.js: zip.js reads entries through
 * its own Reader classes and exposes neither local headers nor a per-entry record of zip64 use, and the
 * gate needs exactly the raw fields (method, flags, 32-bit size fields versus zip64 extras, local header
 * offset) that decide what ClamAV's own 32-bit parser does. The layout is fixed (APPNOTE 4.3.7, 4.3.12-16),
 * and reading it in bounded windows keeps memory flat however many entries there are.
 */
async function inspectZip(type: string, inspection: Inspection): Promise<GateOutcome> {
  const { reader, limits, depth, signal } = inspection;
  try {
    const directory = await findZipDirectory(reader, signal);
    if (directory.bytes > limits.maxDirectoryBytes) {
      return unscannable(
        'limits-exceeded',
        `${type}: central directory of ${directory.bytes} bytes exceeds the ${limits.maxDirectoryBytes} bytes the gate reads`,
      );
    }
    const members = new MemberReader(inspection);
    const nested: Array<{ entry: ZipEntry; local: LocalHeader; container: 'zip' | 'gzip' | 'tar' }> = [];
    // A member listed again (another central entry at the same local header) is the same bytes: judging
    // it again, and opening it again when it is an archive, only multiplies the gate's work per level
    // (64 entries at one 16 MiB nested zip, three levels deep, was an hour of CPU for a 1.3 KB upload
    // that clamd answers OK at once). It still counts as a member; one that declares other sizes or another
    // method than the first listing is not a zip ClamAV reads as its directory says.
    const listed = new Map<number, string>();
    let judged = 0;
    for await (const entry of zipEntries(reader, directory, signal)) {
      const directoryFinding = judgeZipEntry(entry, type, limits);
      if (directoryFinding) return directoryFinding;
      // An empty member has no data for ClamAV to decode, whatever its header says.
      if (entry.compressedSize === 0) continue;
      const listing = `${entry.method}/${entry.flags}/${entry.compressedSize}/${entry.uncompressedSize}`;
      const earlier = listed.get(entry.localHeaderOffset);
      if (earlier !== undefined) {
        if (earlier !== listing) {
          return unscannable(
            'unsupported-format',
            `${type}: central directory entries for the local header at byte ${entry.localHeaderOffset} disagree about its member`,
          );
        }
        if (!isDirectoryEntry(entry)) judged += 1;
        if (judged > limits.maxJudgedMembers) {
          return unscannable(
            'limits-exceeded',
            `${type}: more than the ${limits.maxJudgedMembers} members the gate judges (clamd's MaxFiles)`,
          );
        }
        continue;
      }
      listed.set(entry.localHeaderOffset, listing);
      const { local, data } = await members.header(entry);
      const localFinding = judgeLocalHeader(entry, local, type, limits);
      if (localFinding) return localFinding;
      if (isDirectoryEntry(entry)) continue;
      judged += 1;
      if (judged > limits.maxJudgedMembers) {
        return unscannable(
          'limits-exceeded',
          `${type}: more than the ${limits.maxJudgedMembers} members the gate judges (clamd's MaxFiles)`,
        );
      }
      // Every member is judged by what it holds, whatever its name says.
      const content = await members.content(entry, local, data);
      if (content === undefined) continue;
      if (content.kind === 'container') {
        // Opened in turn below: a zip by its directory, gzip and tar as the streamed layers are.
        nested.push({ entry, local, container: content.container });
        continue;
      }
      if (content.kind === 'unscannable') {
        return unscannable(content.reason, `${type} member "${entry.name}": ${content.detail}`);
      }
    }
    if (directory.zip64) {
      return unscannable(
        'unsupported-format',
        `${type}: uses a zip64 end-of-central-directory record, which ClamAV 1.4 does not read`,
      );
    }
    if (nested.length === 0) return SCANNABLE;
    const first = nested[0]?.entry.name;
    if (depth >= limits.maxNestingDepth) {
      return unscannable(
        'limits-exceeded',
        `${type}: archive member "${first}" is ${depth + 1} levels deep, beyond the ${limits.maxNestingDepth} the gate inspects`,
      );
    }
    if (nested.length > limits.maxNestedMembers) {
      return unscannable(
        'limits-exceeded',
        `${type}: ${nested.length} archive members, more than the ${limits.maxNestedMembers} the gate inspects`,
      );
    }
    for (const { entry, local, container } of nested) {
      const inner =
        container === 'zip'
          ? await inspectNestedMember(entry, local, inspection)
          : await inspectStreamedMember(entry, local, inspection);
      if (inner.kind === 'unscannable') {
        return unscannable(inner.reason, `${type} member "${entry.name}": ${inner.detail}`);
      }
    }
    return SCANNABLE;
  } catch (error) {
    if (error instanceof UnreadableZipError) {
      return unscannable('unsupported-format', `${type}: ${error.message}; ClamAV cannot unpack it either`);
    }
    if (error instanceof GateLimitError) return unscannable('limits-exceeded', `${type}: ${error.message}`);
    throw error;
  }
}

function isDirectoryEntry(entry: ZipEntry): boolean {
  return entry.name.endsWith('/') && entry.uncompressedSize === 0;
}

/** Bit 0: encrypted; bit 6: strong encryption; bit 13: masked local headers (central directory encryption). */
const ENCRYPTION_FLAGS = 0x0001 | 0x0040 | 0x2000;
/** WinZip AES. */
const AES_METHOD = 99;
/** Bit 3: sizes follow the data in a data descriptor; ClamAV then takes them from the central directory. */
const DATA_DESCRIPTOR_FLAG = 0x0008;

function methodProblem(member: string, method: number): GateOutcome | undefined {
  if (CLAMAV_ZIP_METHODS.has(method)) return undefined;
  const name = ZIP_METHOD_NAMES[method];
  return unscannable(
    'unsupported-format',
    `${member} uses compression method ${method}${name ? ` (${name})` : ''}, which ClamAV does not decode`,
  );
}

function sizeProblem(member: string, uncompressedSize: number, limits: GateLimits): GateOutcome | undefined {
  if (uncompressedSize <= limits.maxMemberBytes) return undefined;
  return unscannable(
    'limits-exceeded',
    `${member} declares ${uncompressedSize} bytes uncompressed, more than the ${limits.maxMemberBytes} ClamAV scans per file`,
  );
}

/** The first reason the central directory gives that keeps this member from being Clean, if any. */
function judgeZipEntry(entry: ZipEntry, type: string, limits: GateLimits): GateOutcome | undefined {
  const member = `${type} member "${entry.name}"`;
  if (entry.flags & ENCRYPTION_FLAGS || entry.method === AES_METHOD) {
    return unscannable('encrypted', `${member} is encrypted`);
  }
  const finding = sizeProblem(member, entry.uncompressedSize, limits) ?? methodProblem(member, entry.method);
  if (finding) return finding;
  if (entry.zip64) {
    // ClamAV's unzip reads only the 32-bit size fields; with 0xFFFFFFFF there it skips the member (measured:
    // a deflated EICAR recorded with zip64 extras answers OK).
    return unscannable(
      'unsupported-format',
      `${member} records its sizes in zip64 fields, which ClamAV 1.4 does not read`,
    );
  }
  return undefined;
}

/** The same questions asked of the local header, which is what ClamAV decodes the member with. */
function judgeLocalHeader(
  entry: ZipEntry,
  local: LocalHeader,
  type: string,
  limits: GateLimits,
): GateOutcome | undefined {
  const member = `${type} member "${entry.name}" (local header)`;
  if (local.flags & ENCRYPTION_FLAGS || local.method === AES_METHOD) {
    return unscannable('encrypted', `${member} is encrypted`);
  }
  const sizesHere = (local.flags & DATA_DESCRIPTOR_FLAG) === 0;
  const zip64Sizes = sizesHere && (local.compressedSize === 0xffff_ffff || local.uncompressedSize === 0xffff_ffff);
  const finding =
    (sizesHere && !zip64Sizes ? sizeProblem(member, local.uncompressedSize, limits) : undefined) ??
    methodProblem(member, local.method);
  if (finding) return finding;
  if (zip64Sizes) {
    return unscannable(
      'unsupported-format',
      `${member} records its sizes in zip64 fields, which ClamAV 1.4 does not read`,
    );
  }
  return undefined;
}

/**
 * Each member's local header and first bytes: from the index when it saw them stream by, else by ranged
 * read (one read for the header and the start of the data together), at most maxLocalHeaderReads per zip.
 * Reads of bytes already in memory are not counted.
 */
class MemberReader {
  private reads = 0;

  constructor(private readonly inspection: Inspection) {}

  /** The member's local header, and whatever start of its data came with it (possibly none). */
  async header(entry: ZipEntry): Promise<{ local: LocalHeader; data: Buffer }> {
    const known = this.inspection.localHeaders?.at(entry.localHeaderOffset);
    if (known) return { local: known, data: Buffer.alloc(0) };
    const { reader } = this.inspection;
    const offset = entry.localHeaderOffset;
    if (offset + 30 > reader.size) {
      throw new UnreadableZipError(`member "${entry.name}" has its local header outside the file`);
    }
    if (this.inspection.localHeaders?.complete) {
      // The whole object streamed past the index and no header was at this offset.
      throw new UnreadableZipError(`no local header for member "${entry.name}"`);
    }
    const wanted = entry.method === 0 ? HEAD_BYTES : entry.method === 8 ? FIRST_HEAD_INPUT_BYTES : 0;
    const length = 30 + entry.nameBytes + entry.extraBytes + Math.min(entry.compressedSize, wanted);
    const bytes = await this.read(offset, Math.min(length, reader.size - offset));
    if (bytes.readUInt32LE(0) !== 0x04034b50) {
      throw new UnreadableZipError(`no local header for member "${entry.name}"`);
    }
    const local = parseLocalHeader(bytes, 0);
    return { local, data: bytes.subarray(Math.min(bytes.length, 30 + local.nameBytes + local.extraBytes)) };
  }

  /**
   * What the member's first bytes are (undefined: not judged, for methods Node cannot decode). `data` is a
   * start of the member's data already read, used when it is long enough.
   */
  async content(entry: ZipEntry, local: LocalHeader, data: Buffer): Promise<HeadClass | undefined> {
    // Implode (6), deflate64 (9) and bzip2 (12): ClamAV decodes them, Node's zlib does not; their content
    // is not judged (see the module comment).
    if (local.method !== 0 && local.method !== 8) return undefined;
    const captured = this.inspection.localHeaders?.memberHead(entry.localHeaderOffset);
    if (captured !== undefined && captured.method === local.method) {
      // A stored head is trusted when it covers exactly the member's first bytes as the directory sizes it.
      if (local.method === 8 || captured.span === Math.min(entry.compressedSize, HEAD_BYTES)) {
        return headContent(captured.content);
      }
    }
    const { reader } = this.inspection;
    const dataStart = entry.localHeaderOffset + 30 + local.nameBytes + local.extraBytes;
    if (dataStart + entry.compressedSize > reader.size) {
      throw new UnreadableZipError(`member "${entry.name}" extends beyond the end of the file`);
    }
    const prefix = async (bytes: number): Promise<Buffer> =>
      data.length >= bytes ? data.subarray(0, bytes) : this.read(dataStart, bytes);
    if (local.method === 0) return classifyHead(await prefix(Math.min(entry.compressedSize, HEAD_BYTES)));

    const first = Math.min(entry.compressedSize, FIRST_HEAD_INPUT_BYTES);
    let inflated = inflateHead(await prefix(first), first === entry.compressedSize);
    const most = Math.min(entry.compressedSize, MAX_HEAD_INPUT_BYTES);
    if (inflated !== 'corrupt' && !inflated.ended && inflated.head.length < HEAD_BYTES && most > first) {
      inflated = inflateHead(await prefix(most), most === entry.compressedSize);
    }
    if (inflated === 'corrupt') return headContent('corrupt');
    if (inflated.head.length < HEAD_BYTES && !inflated.ended) return headContent('short');
    return classifyHead(inflated.head);
  }

  private read(start: number, bytes: number): Promise<Buffer> {
    const { reader, limits, signal } = this.inspection;
    if (this.inspection.readsAreRequests) this.reads += 1;
    if (this.reads > limits.maxLocalHeaderReads) {
      throw new GateLimitError(`more members than the ${limits.maxLocalHeaderReads} local headers the gate reads`);
    }
    return reader.read(start, start + bytes - 1, signal);
  }
}

function headContent(content: HeadClass | 'short' | 'corrupt'): HeadClass {
  if (content === 'corrupt') {
    return unscannable('unsupported-format', 'its deflate data does not inflate; ClamAV cannot decode it either');
  }
  if (content === 'short') {
    return unscannable(
      'limits-exceeded',
      `its first ${MAX_HEAD_INPUT_BYTES} compressed bytes inflate to fewer than ${HEAD_BYTES} bytes; the gate does not know what it holds`,
    );
  }
  return content;
}

async function findZipDirectory(reader: RangeReader, signal?: AbortSignal): Promise<ZipDirectory> {
  if (reader.size < 22) throw new UnreadableZipError('too short to hold a zip end-of-central-directory record');
  const tailStart = Math.max(0, reader.size - EOCD_SEARCH_BYTES);
  const tail = await reader.read(tailStart, reader.size - 1, signal);
  for (let at = tail.length - 22; at >= 0; at -= 1) {
    if (tail.readUInt32LE(at) !== 0x06054b50) continue;
    const commentBytes = tail.readUInt16LE(at + 20);
    if (at + 22 + commentBytes > tail.length) continue;
    return readDirectoryLocation(reader, tail, at, tailStart + at, signal);
  }
  throw new UnreadableZipError('no end-of-central-directory record (truncated or not a zip)');
}

async function readDirectoryLocation(
  reader: RangeReader,
  tail: Buffer,
  at: number,
  endRecordOffset: number,
  signal?: AbortSignal,
): Promise<ZipDirectory> {
  const disk = tail.readUInt16LE(at + 4);
  const directoryDisk = tail.readUInt16LE(at + 6);
  const entries = tail.readUInt16LE(at + 10);
  const bytes = tail.readUInt32LE(at + 12);
  const offset = tail.readUInt32LE(at + 16);

  if (at >= 20 && tail.readUInt32LE(at - 20) === 0x07064b50) {
    const recordedOffset = Number(tail.readBigUInt64LE(at - 20 + 8));
    // The zip64 record normally ends where the locator starts; a prepended stub shifts recorded offsets.
    for (const position of [recordedOffset, endRecordOffset - 20 - 56]) {
      if (position < 0 || position + 56 > reader.size) continue;
      const record = await reader.read(position, position + 55, signal);
      if (record.readUInt32LE(0) !== 0x06064b50) continue;
      const shift = position - recordedOffset;
      return checkedDirectory(
        reader,
        {
          start: Number(record.readBigUInt64LE(48)) + shift,
          bytes: Number(record.readBigUInt64LE(40)),
          entries: Number(record.readBigUInt64LE(32)),
          shift,
          zip64: true,
        },
        signal,
      );
    }
    throw new UnreadableZipError('zip64 end-of-central-directory locator points at no zip64 record');
  }
  if (disk !== 0 || directoryDisk !== 0) throw new UnreadableZipError('split or spanned across several files');
  if (entries === 0xffff || bytes === 0xffff_ffff || offset === 0xffff_ffff) {
    throw new UnreadableZipError('zip64 values in the end record without a zip64 locator');
  }
  const shift = endRecordOffset - (offset + bytes);
  if (shift < 0) throw new UnreadableZipError('central directory recorded beyond its end record');
  return checkedDirectory(reader, { start: offset + shift, bytes, entries, shift, zip64: false }, signal);
}

async function checkedDirectory(
  reader: RangeReader,
  directory: ZipDirectory,
  signal?: AbortSignal,
): Promise<ZipDirectory> {
  const { start, bytes, entries } = directory;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(bytes) || start < 0 || start + bytes > reader.size) {
    throw new UnreadableZipError('central directory lies outside the file');
  }
  if (entries > 0) {
    if (bytes < 46) throw new UnreadableZipError('central directory too short for its entries');
    const signature = await reader.read(start, start + 3, signal);
    if (signature.readUInt32LE(0) !== 0x02014b50) throw new UnreadableZipError('no central directory where recorded');
  }
  return directory;
}

/** The directory's entries, read in windows of DIRECTORY_WINDOW_BYTES. */
async function* zipEntries(
  reader: RangeReader,
  directory: ZipDirectory,
  signal?: AbortSignal,
): AsyncGenerator<ZipEntry> {
  const end = directory.start + directory.bytes;
  let position = directory.start;
  let window: Buffer = Buffer.alloc(0);
  let windowStart = position;
  let seen = 0;
  while (position < end) {
    const at = position - windowStart;
    if (!holdsWholeEntry(window, at)) {
      if (position + 46 > end) throw new UnreadableZipError('central directory ends inside an entry');
      // One entry is at most 46 + 3 × 65,535 bytes, so a window always holds at least one.
      window = await reader.read(position, Math.min(end, position + DIRECTORY_WINDOW_BYTES) - 1, signal);
      windowStart = position;
      if (!holdsWholeEntry(window, 0)) throw new UnreadableZipError('central directory ends inside an entry');
      continue;
    }
    const { entry, recordBytes } = parseCentralEntry(window, at, directory.shift);
    position += recordBytes;
    seen += 1;
    yield entry;
  }
  if (seen !== directory.entries) {
    throw new UnreadableZipError(`central directory holds ${seen} entries, its end record says ${directory.entries}`);
  }
}

function holdsWholeEntry(window: Buffer, at: number): boolean {
  if (at + 46 > window.length) return false;
  const variable = window.readUInt16LE(at + 28) + window.readUInt16LE(at + 30) + window.readUInt16LE(at + 32);
  return at + 46 + variable <= window.length;
}

function parseCentralEntry(buffer: Buffer, at: number, shift: number): { entry: ZipEntry; recordBytes: number } {
  if (buffer.readUInt32LE(at) !== 0x02014b50) throw new UnreadableZipError('corrupt central directory entry');
  const flags = buffer.readUInt16LE(at + 8);
  const nameBytes = buffer.readUInt16LE(at + 28);
  const extraBytes = buffer.readUInt16LE(at + 30);
  const commentBytes = buffer.readUInt16LE(at + 32);
  const nameStart = at + 46;
  const name = buffer.subarray(nameStart, nameStart + nameBytes).toString(flags & 0x0800 ? 'utf8' : 'latin1');

  let uncompressedSize = buffer.readUInt32LE(at + 24);
  let compressedSize = buffer.readUInt32LE(at + 20);
  let localHeaderOffset = buffer.readUInt32LE(at + 42);
  const needs = {
    uncompressed: uncompressedSize === 0xffff_ffff,
    compressed: compressedSize === 0xffff_ffff,
    offset: localHeaderOffset === 0xffff_ffff,
  };
  const zip64 = needs.uncompressed || needs.compressed || needs.offset;
  if (zip64) {
    // Zip64 extended information (APPNOTE 4.5.3): only the fields that overflowed, in this order.
    const values = zip64ExtraValues(buffer.subarray(nameStart + nameBytes, nameStart + nameBytes + extraBytes));
    const next = (): number => {
      const value = values?.shift();
      if (value === undefined) throw new UnreadableZipError(`member "${name}" lacks the zip64 field its sizes need`);
      return value;
    };
    if (needs.uncompressed) uncompressedSize = next();
    if (needs.compressed) compressedSize = next();
    if (needs.offset) localHeaderOffset = next();
  }
  return {
    entry: {
      name,
      flags,
      method: buffer.readUInt16LE(at + 10),
      compressedSize,
      uncompressedSize,
      localHeaderOffset: localHeaderOffset + shift,
      zip64,
      nameBytes,
      extraBytes,
    },
    recordBytes: 46 + nameBytes + extraBytes + commentBytes,
  };
}

/** The 64-bit values of the zip64 extended information extra field (id 0x0001), if present. */
function zip64ExtraValues(extra: Buffer): number[] | undefined {
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (id === 0x0001) {
      const values: number[] = [];
      for (let offset = at + 4; offset + 8 <= Math.min(extra.length, at + 4 + length); offset += 8) {
        values.push(Number(extra.readBigUInt64LE(offset)));
      }
      return values;
    }
    at += 4 + length;
  }
  return undefined;
}

/**
 * Opens a member whose name says "archive" and inspects it like an object of its own, one level deeper:
 * a stored member is read in place through a window on the outer reader; a deflated one is inflated in
 * memory, up to maxNestedInflateBytes. Anything else (bigger, or another method) is beyond what the gate
 * inspects and is not called scannable.
 */
async function inspectNestedMember(entry: ZipEntry, local: LocalHeader, outer: Inspection): Promise<GateOutcome> {
  const { reader, limits, signal } = outer;
  if (entry.uncompressedSize === 0) return SCANNABLE;
  const dataStart = entry.localHeaderOffset + 30 + local.nameBytes + local.extraBytes;
  if (dataStart + entry.compressedSize > reader.size) {
    throw new UnreadableZipError(`member "${entry.name}" extends beyond the end of the file`);
  }
  const deeper = {
    limits,
    depth: outer.depth + 1,
    localHeaders: undefined,
    budget: outer.budget,
    ...(signal ? { signal } : {}),
  };

  if (entry.method === 0) {
    const inner = sliceReader(reader, dataStart, entry.compressedSize);
    const head = await inner.read(0, Math.min(inner.size, HEAD_BYTES) - 1, signal);
    return inspect(head, { ...deeper, reader: inner, readsAreRequests: outer.readsAreRequests });
  }
  if (
    entry.method === 8 &&
    entry.compressedSize <= limits.maxNestedInflateBytes &&
    entry.uncompressedSize <= limits.maxNestedInflateBytes
  ) {
    const compressed = await reader.read(dataStart, dataStart + entry.compressedSize - 1, signal);
    const content = inflateMember(compressed, entry.name, limits.maxNestedInflateBytes, outer.budget);
    return inspect(content.subarray(0, HEAD_BYTES), {
      ...deeper,
      reader: bufferReader(content),
      readsAreRequests: false,
    });
  }
  throw new GateLimitError(
    `archive member "${entry.name}" (method ${entry.method}, ${entry.uncompressedSize} bytes) is not opened by the gate: only stored members, or deflated ones up to ${limits.maxNestedInflateBytes} bytes, are inspected`,
  );
}

/** Bytes per write when a stored gzip or tar member is fed to the streaming inspector. */
const NESTED_FEED_BYTES = 64 * 1024;

/**
 * A member that is gzip or tar: ClamAV unpacks it, and what it holds is judged the way the gzip and tar
 * layers of a streamed object are (ContainerStreamInspector, one level deeper, under the same
 * maxNestingDepth and maxStreamInflateBytes). Its data is read with one ranged read, so a member of more than
 * maxNestedInflateBytes compressed is limits-exceeded without being looked at: conservative, and a false
 * positive for a large, ordinary tarball inside a zip. A stored member is fed as it is; a deflated one is
 * inflated as it is fed, at most maxStreamInflateBytes, and inflating stops at the first finding.
 */
async function inspectStreamedMember(entry: ZipEntry, local: LocalHeader, outer: Inspection): Promise<GateOutcome> {
  const { reader, limits, signal } = outer;
  if (entry.compressedSize > limits.maxNestedInflateBytes) {
    throw new GateLimitError(
      `gzip or tar member "${entry.name}" holds ${entry.compressedSize} bytes of data, more than the ${limits.maxNestedInflateBytes} the gate reads to look inside`,
    );
  }
  const dataStart = entry.localHeaderOffset + 30 + local.nameBytes + local.extraBytes;
  if (dataStart + entry.compressedSize > reader.size) {
    throw new UnreadableZipError(`member "${entry.name}" extends beyond the end of the file`);
  }
  const data = await reader.read(dataStart, dataStart + entry.compressedSize - 1, signal);
  const inspector = new ContainerStreamInspector(limits, outer.depth + 1, outer.budget);
  try {
    // The local header's method: what content() judged the first bytes with, and what ClamAV decodes.
    if (local.method === 0) {
      for (let at = 0; at < data.length && !inspector.concluded; at += NESTED_FEED_BYTES) {
        await inspector.write(data.subarray(at, at + NESTED_FEED_BYTES));
      }
    } else {
      await feedInflated(data, entry.name, limits.maxStreamInflateBytes, inspector, outer.budget);
    }
  } catch (error) {
    inspector.abort();
    throw error;
  }
  return inspector.end();
}

/** Inflates a deflated member's data into `inspector` piece by piece (zlib waits while a piece is judged). */
async function feedInflated(
  compressed: Buffer,
  name: string,
  maxBytes: number,
  inspector: ContainerStreamInspector,
  budget: InflateBudget,
): Promise<void> {
  const inflate = createInflateRaw();
  inflate.end(compressed);
  let bytes = 0;
  try {
    for await (const piece of inflate as AsyncIterable<Buffer>) {
      bytes += piece.length;
      if (bytes > maxBytes) throw new GateLimitError(`member "${name}" inflates beyond ${maxBytes} bytes`);
      if (!budget.spend(piece.length)) throw new GateLimitError(budgetSpent(budget));
      await inspector.write(piece);
      if (inspector.concluded) break;
    }
  } catch (error) {
    if (error instanceof GateLimitError) throw error;
    if (((error as NodeJS.ErrnoException).code ?? '').startsWith('Z_')) {
      throw new UnreadableZipError(`member "${name}" does not inflate`);
    }
    throw error;
  } finally {
    inflate.destroy();
  }
}

function inflateMember(compressed: Buffer, name: string, maxBytes: number, budget: InflateBudget): Buffer {
  const cap = Math.min(maxBytes, budget.remaining);
  if (cap === 0) throw new GateLimitError(budgetSpent(budget));
  let content: Buffer;
  try {
    content = inflateRawSync(compressed, { maxOutputLength: cap });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GateLimitError(
        cap < maxBytes ? budgetSpent(budget) : `member "${name}" inflates beyond ${maxBytes} bytes`,
      );
    }
    throw new UnreadableZipError(`member "${name}" does not inflate`);
  }
  budget.spend(content.length);
  return content;
}

function budgetSpent(budget: InflateBudget): string {
  return `the gate has inflated ${budget.limit} bytes for this object, as much as ClamAV scans (MaxScanSize)`;
}

// --- readers -----------------------------------------------------------------------------------------------

export function bufferReader(content: Buffer): RangeReader {
  return {
    size: content.length,
    async read(start, endInclusive) {
      if (start < 0 || endInclusive >= content.length || endInclusive < start) {
        throw new RangeError(`read ${start}-${endInclusive} outside 0-${content.length - 1}`);
      }
      return content.subarray(start, endInclusive + 1);
    },
  };
}

function sliceReader(outer: RangeReader, offset: number, size: number): RangeReader {
  return {
    size,
    read(start, endInclusive, signal) {
      if (start < 0 || endInclusive >= size || endInclusive < start) {
        return Promise.reject(new RangeError(`read ${start}-${endInclusive} outside 0-${size - 1}`));
      }
      return outer.read(offset + start, offset + endInclusive, signal);
    },
  };
}
