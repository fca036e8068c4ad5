/**
 * Archives written byte by byte, for samples and tests that need what ordinary tools will not produce here:
 * zip members compressed with LZMA (zip.js writes only stored and deflate), headers that declare sizes the
 * data does not have, zip64 records on small archives, zstd frames (Node 20 has no zstd), and a zip whose
 * one member inflates to more than ClamAV's per-file limit. Everything is built in memory or streamed to a
 * file at run time: no binary fixtures are committed.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { lzma } from '@napi-rs/lzma';

/** Zip compression method numbers (APPNOTE 4.4.5). */
export const ZIP_METHOD = { stored: 0, deflate: 8, bzip2: 12, lzma: 14, zstd: 93, xz: 95, aes: 99 } as const;

const ZIP32_MAX = 0xffff_ffff;
/** 2025-01-01 00:00 in MS-DOS time/date, so archives are byte-for-byte reproducible. */
const DOS_TIME = 0;
const DOS_DATE = ((2025 - 1980) << 9) | (1 << 5) | 1;

export interface RawZipEntry {
  readonly name: string;
  /** The member's bytes exactly as stored in the archive (already compressed with `method`). */
  readonly payload: Buffer;
  readonly method: number;
  readonly crc32: number;
  /** What the headers declare; may differ from the real content (a header-only "3 GiB" member). */
  readonly uncompressedSize: number;
  /** General purpose flags (bit 0 encrypted, bit 1 LZMA end marker, bit 11 UTF-8 names). */
  readonly flags?: number;
  /**
   * Record the sizes (and offset) in zip64 extra fields, with 0xFFFFFFFF in the 32-bit fields; `local` does
   * so in the local header only, as Python's zipfile does for a member it was told might exceed 2 GiB.
   */
  readonly zip64?: boolean | 'local';
  /**
   * Write the sizes and CRC in a data descriptor after the data (flag bit 3, zeros in the local header), as
   * streaming writers do: Java's ZipOutputStream for deflated entries, Go's archive/zip for every entry.
   */
  readonly dataDescriptor?: boolean;
}

export interface RawZipOptions {
  /** Write a zip64 end-of-central-directory record and locator before the classic one. */
  readonly zip64Directory?: boolean;
  /** Bytes before the first local header (a self-extractor stub, a CRX header). */
  readonly prefix?: Buffer;
}

/** A zip with the entries exactly as given: local headers, data, central directory, end record. */
export function rawZip(entries: readonly RawZipEntry[], options: RawZipOptions = {}): Buffer {
  const prefix = options.prefix ?? Buffer.alloc(0);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = prefix.length;
  for (const entry of entries) {
    const local = localHeader(entry, entry.payload.length);
    const descriptor = entry.dataDescriptor ? dataDescriptor(entry) : Buffer.alloc(0);
    locals.push(local, entry.payload, descriptor);
    centrals.push(centralHeader(entry, entry.payload.length, offset));
    offset += local.length + entry.payload.length + descriptor.length;
  }
  const directory = Buffer.concat(centrals);
  return Buffer.concat([
    prefix,
    ...locals,
    directory,
    endOfDirectory(entries.length, directory.length, offset, options.zip64Directory ?? false),
  ]);
}

/** The data descriptor with its optional signature: CRC-32, compressed and uncompressed size. */
function dataDescriptor(entry: RawZipEntry): Buffer {
  const descriptor = Buffer.alloc(16);
  descriptor.writeUInt32LE(0x08074b50, 0);
  descriptor.writeUInt32LE(entry.crc32 >>> 0, 4);
  descriptor.writeUInt32LE(entry.payload.length, 8);
  descriptor.writeUInt32LE(entry.uncompressedSize, 12);
  return descriptor;
}

function versionNeeded(entry: RawZipEntry): number {
  return entry.zip64 ? 45 : entry.method === ZIP_METHOD.lzma ? 63 : 20;
}

function localHeader(entry: RawZipEntry, csize: number): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  const usize = entry.uncompressedSize;
  const extra = entry.zip64 ? zip64Extra([usize, csize]) : Buffer.alloc(0);
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(versionNeeded(entry), 4);
  const descriptor = entry.dataDescriptor === true;
  header.writeUInt16LE((entry.flags ?? 0) | 0x0800 | (descriptor ? 0x0008 : 0), 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt16LE(DOS_TIME, 10);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(descriptor ? 0 : entry.crc32 >>> 0, 14);
  header.writeUInt32LE(descriptor ? 0 : entry.zip64 ? ZIP32_MAX : csize, 18);
  header.writeUInt32LE(descriptor ? 0 : entry.zip64 ? ZIP32_MAX : usize, 22);
  header.writeUInt16LE(name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, name, extra]);
}

function centralHeader(entry: RawZipEntry, csize: number, offset: number): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  const usize = entry.uncompressedSize;
  const zip64 = entry.zip64 === true;
  const extra = zip64 ? zip64Extra([usize, csize, offset]) : Buffer.alloc(0);
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(0x031e, 4);
  header.writeUInt16LE(versionNeeded(entry), 6);
  header.writeUInt16LE((entry.flags ?? 0) | 0x0800 | (entry.dataDescriptor ? 0x0008 : 0), 8);
  header.writeUInt16LE(entry.method, 10);
  header.writeUInt16LE(DOS_TIME, 12);
  header.writeUInt16LE(DOS_DATE, 14);
  header.writeUInt32LE(entry.crc32 >>> 0, 16);
  header.writeUInt32LE(zip64 ? ZIP32_MAX : csize, 20);
  header.writeUInt32LE(zip64 ? ZIP32_MAX : usize, 24);
  header.writeUInt16LE(name.length, 28);
  header.writeUInt16LE(extra.length, 30);
  header.writeUInt32LE(0o100644 * 0x10000, 38);
  header.writeUInt32LE(zip64 ? ZIP32_MAX : offset, 42);
  return Buffer.concat([header, name, extra]);
}

function zip64Extra(values: readonly number[]): Buffer {
  const extra = Buffer.alloc(4 + 8 * values.length);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8 * values.length, 2);
  values.forEach((value, index) => {
    extra.writeBigUInt64LE(BigInt(value), 4 + 8 * index);
  });
  return extra;
}

function endOfDirectory(count: number, directoryBytes: number, directoryOffset: number, zip64: boolean): Buffer {
  const parts: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeUInt16LE(0x032d, 12);
    record.writeUInt16LE(45, 14);
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(directoryBytes), 40);
    record.writeBigUInt64LE(BigInt(directoryOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(directoryOffset + directoryBytes), 8);
    locator.writeUInt32LE(1, 16);
    parts.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : count, 8);
  end.writeUInt16LE(zip64 ? 0xffff : count, 10);
  end.writeUInt32LE(zip64 ? ZIP32_MAX : directoryBytes, 12);
  end.writeUInt32LE(zip64 ? ZIP32_MAX : directoryOffset, 16);
  parts.push(end);
  return Buffer.concat(parts);
}

/** A stored (method 0) entry. */
export function storedEntry(name: string, content: Buffer | string, extra: Partial<RawZipEntry> = {}): RawZipEntry {
  const data = Buffer.from(content);
  return {
    name,
    payload: data,
    method: ZIP_METHOD.stored,
    crc32: crc32(data),
    uncompressedSize: data.length,
    ...extra,
  };
}

/** A deflated (method 8) entry. */
export function deflatedEntry(name: string, content: Buffer | string, extra: Partial<RawZipEntry> = {}): RawZipEntry {
  const data = Buffer.from(content);
  return {
    name,
    payload: deflateRawSync(data),
    method: ZIP_METHOD.deflate,
    crc32: crc32(data),
    uncompressedSize: data.length,
    ...extra,
  };
}

/**
 * An entry compressed with LZMA, method 14, as 7-Zip and Python's zipfile write it: a 4-byte LZMA SDK
 * version/properties-size header, the 5 properties bytes, then the raw LZMA stream with its end marker
 * (flag bit 1). The stream comes from liblzma's `.lzma` encoder, minus that format's 8-byte size field.
 */
export function lzmaEntry(name: string, content: Buffer | string): RawZipEntry {
  const data = Buffer.from(content);
  const alone = lzmaAlone(data);
  const header = Buffer.from([9, 20, 5, 0]);
  return {
    name,
    payload: Buffer.concat([header, alone.subarray(0, 5), alone.subarray(13)]),
    method: ZIP_METHOD.lzma,
    crc32: crc32(data),
    uncompressedSize: data.length,
    flags: 0x0002,
  };
}

/** `.lzma` ("LZMA alone", the format of `xz --format=lzma`): 5 properties bytes, 8-byte size, stream. */
export function lzmaAlone(content: Buffer | string): Buffer {
  return lzma.compressSync(Buffer.from(content));
}

/**
 * A zstd frame (RFC 8878) whose content is `content` in raw (uncompressed) blocks of at most `blockBytes`.
 * Block headers sit between the blocks, so a signature longer than `blockBytes` never appears in one piece
 * in the file: what a scanner sees is what a real zstd stream would show it, content it cannot decode.
 */
export function zstdFrame(content: Buffer | string, blockBytes = 32): Buffer {
  const data = Buffer.from(content);
  const magic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
  // Frame header descriptor: single segment, 4-byte content size (flag 2 → FCS field 4 bytes), no checksum.
  const descriptor = Buffer.from([0b1010_0000]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(data.length, 0);
  const blocks: Buffer[] = [];
  for (let start = 0; start < data.length || start === 0; start += blockBytes) {
    const block = data.subarray(start, Math.min(start + blockBytes, data.length));
    const last = start + blockBytes >= data.length ? 1 : 0;
    // Block header: 3 bytes little-endian, bit 0 last block, bits 1-2 type (0 = raw), bits 3.. size.
    const header = (block.length << 3) | last;
    blocks.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
    if (data.length === 0) break;
  }
  return Buffer.concat([magic, descriptor, size, ...blocks]);
}

/**
 * Streams a zip with one deflated member of `memberBytes` zeros followed by `tail` to `path`, without ever
 * holding the member: zeros → deflateRaw (level 1) → file, CRC-32 computed on the way, headers written
 * once the sizes are known. Classic zip32 fields hold sizes up to 4 GiB; `zip64` records the sizes in zip64
 * extra fields instead, as Python's zipfile does for any member above 2 GiB.
 */
export async function writeLargeMemberZip(
  path: string,
  memberName: string,
  memberBytes: number,
  tail: Buffer,
  options: { zip64?: boolean } = {},
): Promise<{ size: number; uncompressedSize: number }> {
  const uncompressedSize = memberBytes + tail.length;
  const zip64 = options.zip64 ?? false;
  if (!zip64 && uncompressedSize > ZIP32_MAX) throw new Error('a zip32 member must be under 4 GiB');
  const draft: RawZipEntry = {
    name: memberName,
    payload: Buffer.alloc(0),
    method: ZIP_METHOD.deflate,
    crc32: 0,
    uncompressedSize,
    zip64,
  };
  const headerBytes = localHeader(draft, 0).length;

  let crc = 0;
  let compressedSize = 0;
  const chunk = Buffer.alloc(1024 * 1024);
  async function* content(): AsyncGenerator<Buffer> {
    for (let left = memberBytes; left > 0; left -= chunk.length) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      crc = crc32(piece, crc);
      yield piece;
    }
    crc = crc32(tail, crc);
    yield tail;
  }
  async function* counted(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const piece of source) {
      compressedSize += piece.length;
      yield piece;
    }
  }
  await pipeline(
    Readable.from(content()),
    createDeflateRaw({ level: 1 }),
    counted,
    createWriteStream(path, { start: headerBytes }),
  );

  const entry: RawZipEntry = { ...draft, crc32: crc };
  const local = localHeader(entry, compressedSize);
  const central = centralHeader(entry, compressedSize, 0);
  const end = endOfDirectory(1, central.length, headerBytes + compressedSize, false);
  const file = await open(path, 'r+');
  try {
    await file.write(local, 0, local.length, 0);
    await file.write(Buffer.concat([central, end]), 0, central.length + end.length, headerBytes + compressedSize);
  } finally {
    await file.close();
  }
  return { size: headerBytes + compressedSize + central.length + end.length, uncompressedSize };
}

export interface TarEntry {
  readonly name: string;
  readonly content: Buffer | string;
  /** Type flag: '0' regular file (default), '5' directory, 'x' pax extended header, 'L' GNU long name. */
  readonly type?: string;
}

/**
 * A ustar archive (POSIX 1003.1-1988 header blocks, octal fields, two zero blocks at the end), as GNU tar
 * and Python's tarfile write it for short names. Names over 100 bytes are cut: use a pax ('x') entry
 * before the member for a long one, as real writers do.
 */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content);
    blocks.push(tarHeader(entry.name, content.length, entry.type ?? '0'), content);
    const padding = (512 - (content.length % 512)) % 512;
    if (padding > 0) blocks.push(Buffer.alloc(padding));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** One 512-byte ustar header block with a correct checksum. */
export function tarHeader(name: string, size: number, type = '0'): Buffer {
  const header = Buffer.alloc(512);
  header.write(name.slice(0, 100), 0, 'utf8');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write(`${(1735689600).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  header.write(type, 156, 'latin1');
  header.write('ustar\0' + '00', 257, 'latin1');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

/** A pax extended header entry naming the member that follows (`path=…`), for names over 100 bytes. */
export function paxPath(path: string): TarEntry {
  const body = (length: number): string => `${length} path=${path}\n`;
  let length = body(0).length;
  while (body(length).length !== length) length = body(length).length;
  return { name: 'PaxHeader', content: body(length), type: 'x' };
}

/** Deterministic incompressible bytes (xorshift): fixtures that look random and reproduce exactly. */
export function noise(bytes: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(bytes);
  let state = seed;
  for (let index = 0; index < bytes; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[index] = state & 0xff;
  }
  return out;
}
