/**
 * ClamAV's unsigned database container (`.cud`): what `sigtool --build=<name>.cud --unsigned` writes, built
 * here so the project's test DB carries a version and a publication date without sigtool or a mirror.
 *
 * clamd reports a database version and date (VERSION `ClamAV 1.4.6/<version>/<date>`) only from a
 * container named `daily.*` (.cvd, .cld or .cud); plain .ndb/.hdb/.ldb files, whatever their name, leave
 * it at `ClamAV 1.4.6` (measured with clamd 1.4.6). A .cud needs no signature from Talos; clamd 1.4.6
 * refuses one without its `<name>.info` entry list ("dbinfo error") or without any signature in it.
 *
 * Layout: a 512-byte header `ClamAV-VDB:<build time>:<version>:<signatures>:<functionality level>:<MD5 of
 * the rest>:X:<builder>:<publication time, Unix seconds>` padded with spaces, then a gzipped tar of
 * `<name>.info` (the same header without MD5, then `file:size:sha256` per file) and the files.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface UnsignedDatabase {
  /** `daily` for clamd to report the version and date. */
  readonly name: string;
  /** The database version clamd reports (a positive integer). */
  readonly version: number;
  /** The publication time clamd reports (whole seconds; clamd formats it in its local time zone). */
  readonly publishedAt: Date;
  /** Signature files by name, e.g. `daily.hdb`; each line one signature. At least one signature. */
  readonly files: Readonly<Record<string, string>>;
  /** @default 'scanflow' */
  readonly builder?: string;
}

/** Functionality level: the lowest engine that may load it. Low, so any clamd 1.x loads the container. */
const FUNCTIONALITY_LEVEL = 90;
const BLOCK = 512;

export function unsignedDatabase(db: UnsignedDatabase): Buffer {
  if (!Number.isSafeInteger(db.version) || db.version < 1) {
    throw new Error(`database version must be a positive integer (got ${db.version})`);
  }
  const entries = Object.entries(db.files).map(([file, text]) => [file, Buffer.from(text, 'utf8')] as const);
  const signatures = entries.reduce(
    (count, [, data]) => count + data.toString('utf8').split('\n').filter(Boolean).length,
    0,
  );
  if (signatures === 0) throw new Error('clamd refuses a database container without signatures');
  const seconds = Math.floor(db.publishedAt.getTime() / 1000);
  const header = (md5: string): string =>
    [
      'ClamAV-VDB',
      buildTime(db.publishedAt),
      db.version,
      signatures,
      FUNCTIONALITY_LEVEL,
      md5,
      'X',
      db.builder ?? 'scanflow',
      seconds,
    ].join(':');
  const info = [
    header('X'),
    ...entries.map(([file, data]) => `${file}:${data.length}:${createHash('sha256').update(data).digest('hex')}`),
  ].join('\n');
  const archive = gzipSync(
    Buffer.concat([
      tarEntry(`${db.name}.info`, Buffer.from(`${info}\n`, 'ascii')),
      ...entries.map(([file, data]) => tarEntry(file, data)),
      Buffer.alloc(2 * BLOCK),
    ]),
  );
  const head = Buffer.alloc(BLOCK, ' ');
  const text = header(createHash('md5').update(archive).digest('hex'));
  if (text.length > BLOCK) throw new Error('database header longer than 512 bytes');
  head.write(text, 0, 'ascii');
  return Buffer.concat([head, archive]);
}

/** `25 Nov 2026 17-08 +0000`, as sigtool writes it (informational; clamd reads the Unix seconds). */
function buildTime(at: Date): string {
  const month = at.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(at.getUTCDate())} ${month} ${at.getUTCFullYear()} ${two(at.getUTCHours())}-${two(at.getUTCMinutes())} +0000`;
}

/** One ustar entry: a 512-byte header, then the data padded to a whole block. */
function tarEntry(name: string, data: Buffer): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  const octal = (value: number, width: number): string => `${value.toString(8).padStart(width - 1, '0')}\0`;
  h.write(name, 0, 100, 'ascii');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(data.length, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write(' '.repeat(8), 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  const checksum = h.reduce((sum, byte) => sum + byte, 0);
  h.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return Buffer.concat([h, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}
