/**
 * Signature databases the project generates itself, for machines that cannot reach a ClamAV mirror:
 *
 * - the test DB (`writeTestDatabase`): detects the EICAR test file by body, MD5 and SHA-256, a tail
 *   marker that tests put at the very end of large objects and archive members to prove every byte was
 *   scanned, and markers that only match after one of clamd's secondary passes (HTML normalisation,
 *   tag stripping, script normalisation, a PCRE subsignature), to prove those passes reach the end of an
 *   object too (scanner-image/clamd.conf sets their size limits to MaxFileSize); plus a `daily.cud`
 *   container (`writeDatabaseVersion`) that gives it a version and publication date, which clamd reports in
 *   VERSION like the official daily database's, so signature freshness can be measured locally;
 * - a synthetic DB (`writeSyntheticDatabase`) of N never-matching signatures, deterministic, with roughly
 *   the mix of the official one (mostly hashes, some body patterns), so benchmarks pay a realistic
 *   matcher cost. It includes the test DB so the benchmark's objects still get their verdicts.
 *
 * Usage: tsx scanner-image/signatures/generate.ts <dir> [--synthetic <count>]
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unsignedDatabase } from './cud.js';

/** The EICAR anti-virus test file, stored encoded so this source file itself is not flagged. */
export const EICAR = Buffer.from(
  'WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=',
  'base64',
);

/** Put at the end of large test objects: a detection proves clamd read up to the last byte. */
export const TAIL_MARKER = Buffer.from('SCANFLOW-TAIL-MARKER-2f6d1c', 'ascii');

/**
 * Markers that match only after a pass clamd skips above a size limit, and answers OK for (measured with
 * clamd 1.4.6 at ClamAV's default limits: each marker past the limit → `stream: OK`). Each is written in
 * upper case and its signature in lower case, so the raw bytes never match: only the normalised text does.
 */
export const SECONDARY_PASS_MARKERS = {
  /** `.ndb` target 3 (normalised HTML): HTML normalisation lower-cases. Limit: MaxHTMLNormalize. */
  html: { raw: 'SCANFLOW-HTML-MARKER-7e3a', matches: 'scanflow-html-marker-7e3a' },
  /**
   * Target 3 on the tag-stripped text: clamd replaces each tag with a space, so the marker only reads
   * `scanflow- notags- marker-7e3a` once the tags are gone. Limit: MaxHTMLNoTags (on the stripped text).
   */
  htmlNoTags: { raw: 'SCANFLOW-<b></b>NOTAGS-<i></i>MARKER-7e3a', matches: 'scanflow- notags- marker-7e3a' },
  /** `.ndb` target 7 (normalised ASCII text/script): lower-cased. Limit: MaxScriptNormalize. */
  script: { raw: 'SCANFLOW-SCRIPT-MARKER-7e3a', matches: 'scanflow-script-marker-7e3a' },
  /** `.ldb` with a PCRE subsignature: the literal prefix alone does not match. Limit: PCREMaxFileSize. */
  pcre: { raw: 'SCANFLOW-PCRE-MARKER-123456', matches: '/SCANFLOW-PCRE-MARKER-[0-9]{6}/' },
} as const;

export const TEST_SIGNATURES = {
  eicarBody: 'Scanflow.Test.EICAR-Body',
  eicarMd5: 'Scanflow.Test.EICAR-MD5',
  eicarSha256: 'Scanflow.Test.EICAR-SHA256',
  tailMarker: 'Scanflow.Test.TailMarker',
  htmlMarker: 'Scanflow.Test.HtmlMarker',
  htmlNoTagsMarker: 'Scanflow.Test.HtmlNoTagsMarker',
  scriptMarker: 'Scanflow.Test.ScriptMarker',
  pcreMarker: 'Scanflow.Test.PcreMarker',
} as const;

const TEST_DB_FILES = ['scanflow-test.ndb', 'scanflow-test.ldb', 'scanflow-test.hdb', 'scanflow-test.hsb'] as const;
const SIGNATURE_EXTENSIONS =
  /\.(cvd|cld|cud|ndb|hdb|hsb|ldb|mdb|msb|ndu|ldu|hdu|hsu|ign2|fp|sfp|pdb|wdb|yar|yara|cdb|cbc)$/;

export function hasSignatures(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((name) => SIGNATURE_EXTENSIONS.test(name));
}

/** What clamd reports for a database directory: `ClamAV 1.4.6/<version>/<publishedAt in clamd's time zone>`. */
export interface DatabaseVersion {
  readonly version: number;
  readonly publishedAt: Date;
}

/** The version of a freshly generated test DB (its date is when it was generated). */
export const TEST_DATABASE_VERSION = 1;
/** The one signature of the version container: an MD5 no test content has (clamd refuses an empty container). */
export const VERSION_MARKER_SIGNATURE = 'Scanflow.Test.DatabaseVersionMarker';
export const DATABASE_VERSION_FILE = 'daily.cud';

/**
 * Writes (or replaces) `daily.cud` in `dir`: the version and publication date clamd reports, as freshclam's
 * daily.cld gives them in the image. Replaced by rename, so a clamd reloading meanwhile reads the old or
 * the new one whole. Returns its path.
 */
export function writeDatabaseVersion(dir: string, db: DatabaseVersion): string {
  mkdirSync(dir, { recursive: true });
  const marker = createHash('md5').update(`${VERSION_MARKER_SIGNATURE}:never-scanned`).digest('hex');
  const container = unsignedDatabase({
    name: 'daily',
    version: db.version,
    publishedAt: db.publishedAt,
    files: { 'daily.hdb': `${marker}:1:${VERSION_MARKER_SIGNATURE}\n` },
  });
  const path = join(dir, DATABASE_VERSION_FILE);
  writeFileSync(`${path}.tmp`, container);
  renameSync(`${path}.tmp`, path);
  return path;
}

/**
 * Writes the test DB into `dir` (created if needed), versioned `version` (default
 * {@link TEST_DATABASE_VERSION}, published now). Returns the files written.
 */
export function writeTestDatabase(dir: string, version: Partial<DatabaseVersion> = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const md5 = createHash('md5').update(EICAR).digest('hex');
  const sha256 = createHash('sha256').update(EICAR).digest('hex');
  const hex = (text: string): string => Buffer.from(text, 'ascii').toString('hex');
  const m = SECONDARY_PASS_MARKERS;
  const pcrePrefix = m.pcre.raw.slice(0, m.pcre.raw.lastIndexOf('-') + 1);
  const contents: Record<(typeof TEST_DB_FILES)[number], string> = {
    // name:target(0 = any file, 3 = normalised HTML, 7 = normalised text):offset(* = anywhere):hex body
    'scanflow-test.ndb': [
      `${TEST_SIGNATURES.eicarBody}:0:*:${EICAR.toString('hex')}`,
      `${TEST_SIGNATURES.tailMarker}:0:*:${TAIL_MARKER.toString('hex')}`,
      `${TEST_SIGNATURES.htmlMarker}:3:*:${hex(m.html.matches)}`,
      `${TEST_SIGNATURES.htmlNoTagsMarker}:3:*:${hex(m.htmlNoTags.matches)}`,
      `${TEST_SIGNATURES.scriptMarker}:7:*:${hex(m.script.matches)}`,
    ].join('\n'),
    // name;target block;logical expression;subsig 0 (literal trigger);subsig 1 (PCRE, run where 0 matched)
    'scanflow-test.ldb': `${TEST_SIGNATURES.pcreMarker};Engine:81-255,Target:0;0&1;${hex(pcrePrefix)};0${m.pcre.matches}`,
    'scanflow-test.hdb': `${md5}:${EICAR.length}:${TEST_SIGNATURES.eicarMd5}`,
    'scanflow-test.hsb': `${sha256}:${EICAR.length}:${TEST_SIGNATURES.eicarSha256}`,
  };
  const files = TEST_DB_FILES.map((file) => {
    const path = join(dir, file);
    writeFileSync(path, `${contents[file]}\n`);
    return path;
  });
  const versionFile = writeDatabaseVersion(dir, {
    version: version.version ?? TEST_DATABASE_VERSION,
    publishedAt: version.publishedAt ?? new Date(),
  });
  return [...files, versionFile];
}

/** A deterministic byte source (SHA-256 in counter mode): same count → same DB, byte for byte. */
function* deterministicBytes(seed: string): Generator<Buffer> {
  for (let counter = 0; ; counter += 1) {
    yield createHash('sha256').update(`${seed}:${counter}`).digest();
  }
}

/**
 * Writes `count` synthetic signatures plus the test DB into `dir`: 90 % MD5 hash signatures (as in the
 * official DB, most signatures are hashes) and 10 % 24-byte body signatures that the Aho-Corasick matcher
 * must carry on every byte it scans. None of them can match real data by accident (random 192-bit patterns).
 */
export async function writeSyntheticDatabase(dir: string, count: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const bodyCount = Math.floor(count / 10);
  const hashCount = count - bodyCount;
  const bytes = deterministicBytes(`scanflow-synthetic-${count}`);
  const next = (): Buffer => bytes.next().value as Buffer;

  const writeLines = async (path: string, lines: number, line: (i: number) => string): Promise<void> => {
    const out = createWriteStream(path);
    for (let i = 0; i < lines; i += 1) {
      if (!out.write(`${line(i)}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  };
  const hdb = join(dir, 'scanflow-synthetic.hdb');
  const ndb = join(dir, 'scanflow-synthetic.ndb');
  await writeLines(hdb, hashCount, (i) => {
    const digest = next();
    const size = 1024 + (digest.readUInt32BE(16) % (4 * 1024 * 1024));
    return `${digest.subarray(0, 16).toString('hex')}:${size}:Scanflow.Synthetic.Hash-${i}`;
  });
  await writeLines(ndb, bodyCount, (i) => `Scanflow.Synthetic.Body-${i}:0:*:${next().subarray(0, 24).toString('hex')}`);
  return [hdb, ndb, ...writeTestDatabase(dir)];
}

async function cli(argv: readonly string[]): Promise<void> {
  const [dir, flag, countText] = argv;
  if (!dir || (flag !== undefined && flag !== '--synthetic')) {
    process.stderr.write('usage: tsx scanner-image/signatures/generate.ts <dir> [--synthetic <count>]\n');
    process.exit(2);
  }
  const files =
    flag === '--synthetic' ? await writeSyntheticDatabase(dir, Number(countText ?? 1_000_000)) : writeTestDatabase(dir);
  process.stdout.write(`${files.join('\n')}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await cli(process.argv.slice(2));
}
