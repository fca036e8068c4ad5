/**
 * The scanner image's clamd limits that the rest of the pipeline is sized by: the ScanObject task timeout
 * (scan-execution.ts), the worker's clamd idle timeout (scanner-image/src/clamd-client.ts) and the workers'
 * ephemeral storage (infra/lib/scan-pipeline-props.ts). scanner-image/clamd.conf is what clamd reads;
 * test/unit/worker-clamd-conf.test.ts fails when these values and that file disagree.
 */
export const CLAMD_LIMITS = {
  /**
   * `MaxScanTime` (ms). A scan running longer is answered `Heuristics.Limits.Exceeded.MaxScanTime`
   * (→ Unscannable `limits-exceeded`). clamd's clock starts after the whole INSTREAM arrived. 15 minutes
   * covers a 2 GiB object scanned at ~2.3 MB/s (a vCPU shared by several scans) while still bounding a
   * pathological file; everything that waits on clamd is sized from it.
   */
  maxScanTimeMs: 900_000,
  /**
   * `MaxScanSize` (= `MaxFileSize`, ClamAV's per-file maximum). Everything one scan writes to clamd's
   * TemporaryDirectory counts toward it: the spooled stream itself, each unpacked member, the normalised
   * copies of an HTML file (measured with clamd 1.4.6), so it bounds one scan's temporary disk.
   */
  maxScanBytes: 2_147_483_645,
  /** `StreamMaxLength`: clamd closes a longer INSTREAM with "size limit exceeded" (→ Unscannable `too-large`). */
  streamMaxLengthBytes: 2_147_483_645,
  /** `ReadTimeout` (s): clamd drops an INSTREAM whose next chunk takes longer than this to arrive. */
  readTimeoutSeconds: 300,
} as const;
