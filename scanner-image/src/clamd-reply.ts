import type { Verdict } from '../../functions/commons/verdict.js';

/**
 * What one clamd INSTREAM reply means. Either a verdict, or "the scanner did not answer usefully", which
 * the worker retries (fresh download, fresh connection) and finally reports as ScannerUnavailableError.
 * There is deliberately no path from an unrecognised reply to Clean.
 */
export type ClamdReplyOutcome =
  | { readonly kind: 'verdict'; readonly verdict: Verdict }
  | { readonly kind: 'unavailable'; readonly detail: string };

const FOUND = /^[^:]*:\s+(.+?)\s+FOUND$/;
const OK = /^[^:]*:\s+OK$/;
/** clamd closes an INSTREAM session above StreamMaxLength with this ERROR reply. */
const SIZE_LIMIT = /size limit exceeded/i;

/**
 * Maps a raw clamd reply (`stream: OK`, `stream: <name> FOUND`, `INSTREAM size limit exceeded. ERROR`, …)
 * to a verdict. The `clamscan` package treats every FOUND as "infected" and every ERROR as a generic error;
 * we need the distinctions below, so we read the reply text ourselves.
 *
 * - `Heuristics.Encrypted.*` (AlertEncrypted*): the content could not be read → Unscannable `encrypted`.
 * - `Heuristics.Limits.Exceeded.*` (AlertExceedsMax): part of the content was not scanned (size, recursion,
 *   file count, scan time) → Unscannable `limits-exceeded`.
 * - Any other name, including other heuristics (phishing, broken executables), is a detection → Infected.
 */
export function mapClamdReply(raw: string): ClamdReplyOutcome {
  const reply = raw.replace(/\0/g, '').trim();
  if (OK.test(reply)) return { kind: 'verdict', verdict: { verdict: 'Clean' } };

  const found = FOUND.exec(reply);
  if (found?.[1]) {
    const signature = found[1];
    if (signature.startsWith('Heuristics.Encrypted.')) {
      return { kind: 'verdict', verdict: { verdict: 'Unscannable', reason: 'encrypted', signature } };
    }
    if (signature.startsWith('Heuristics.Limits.Exceeded.')) {
      return { kind: 'verdict', verdict: { verdict: 'Unscannable', reason: 'limits-exceeded', signature } };
    }
    return { kind: 'verdict', verdict: { verdict: 'Infected', signature } };
  }

  if (SIZE_LIMIT.test(reply)) {
    return { kind: 'verdict', verdict: { verdict: 'Unscannable', reason: 'too-large' } };
  }
  return {
    kind: 'unavailable',
    detail: reply === '' ? 'clamd closed the connection without a reply' : `clamd replied "${reply}"`,
  };
}

export interface ClamdVersion {
  /** e.g. `ClamAV 1.4.6` */
  readonly engine: string;
  /** The daily signature database version, e.g. `27471`, or `unknown` when clamd loaded no versioned DB. */
  readonly databaseVersion: string;
  /** When that database was published, as clamd reports it (absent for unversioned DBs). */
  readonly databaseDate?: string;
}

/** Parses a clamd VERSION reply: `ClamAV 1.4.6/27471/Tue Nov 25 08:26:02 2025` or just `ClamAV 1.4.6`. */
export function parseClamdVersion(raw: string): ClamdVersion {
  const reply = raw.replace(/\0/g, '').trim();
  const [engine = '', databaseVersion, databaseDate] = reply.split('/');
  if (!engine.startsWith('ClamAV ')) throw new Error(`unexpected clamd VERSION reply: "${reply}"`);
  return {
    engine,
    databaseVersion: databaseVersion?.trim() || 'unknown',
    ...(databaseDate ? { databaseDate: databaseDate.trim() } : {}),
  };
}
