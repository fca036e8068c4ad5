import { createReadStream, statSync } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { LocalRuntime } from './pipeline.js';
import {
  describePlacement,
  describeReason,
  executionNameOf,
  receiveResults,
  type ScanNotification,
} from './results.js';
import { renderTable } from './table.js';

export interface Upload {
  readonly key: string;
  /** A file on disk (streamed, never read whole) or a small in-memory body. */
  readonly source: { readonly path: string } | { readonly body: Uint8Array | string };
  readonly expected?: { readonly verdict: string; readonly reason?: string; readonly signature?: string };
}

export interface UploadOutcome {
  readonly upload: Upload;
  readonly notification?: ScanNotification;
  /** From the upload finishing to the result notification arriving. */
  readonly latencyMs?: number;
  readonly asExpected: boolean;
}

function matchesExpectation(upload: Upload, notification: ScanNotification | undefined): boolean {
  if (!notification) return false;
  if (!upload.expected) return true;
  const { verdict, reason, signature } = upload.expected;
  if (notification.verdict !== verdict) return false;
  if (reason !== undefined && notification.scan.reason !== reason) return false;
  return signature === undefined || (notification.scan.signature ?? '').includes(signature);
}

async function put(runtime: LocalRuntime, upload: Upload): Promise<void> {
  const bucket = runtime.layout.buckets.staging;
  if ('path' in upload.source) {
    const size = statSync(upload.source.path).size;
    await runtime.clients.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: upload.key,
        Body: createReadStream(upload.source.path),
        ContentLength: size,
      }),
    );
  } else {
    await runtime.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: upload.key, Body: upload.source.body }));
  }
}

/**
 * Uploads files to the staging bucket the way a user would and waits for each one's result on the results
 * topic. Nothing here talks to start-scan, the state machine or the worker directly: the S3 event drives it.
 */
export async function scanThroughPipeline(
  runtime: LocalRuntime,
  uploads: readonly Upload[],
  options: { timeoutMs: number; onResult?: (outcome: UploadOutcome) => void },
): Promise<UploadOutcome[]> {
  const uploadedAt = new Map<string, number>();
  for (const upload of uploads) {
    await put(runtime, upload);
    uploadedAt.set(upload.key, Date.now());
  }

  const byKey = new Map(uploads.map((upload) => [upload.key, upload]));
  const outcomes = new Map<string, UploadOutcome>();
  const deadline = Date.now() + options.timeoutMs;
  while (outcomes.size < uploads.length && Date.now() < deadline) {
    if (runtime.worker.hasExited()) throw new Error(`the scanner worker exited; see ${runtime.worker.logFile}`);
    for (const { notification, receivedAt } of await receiveResults(
      runtime.clients.sqs,
      runtime.layout.queues.results,
    )) {
      const upload = byKey.get(notification.object.key);
      if (!upload || outcomes.has(upload.key)) continue;
      const outcome: UploadOutcome = {
        upload,
        notification,
        latencyMs: receivedAt - (uploadedAt.get(upload.key) ?? receivedAt),
        asExpected: matchesExpectation(upload, notification),
      };
      outcomes.set(upload.key, outcome);
      options.onResult?.(outcome);
    }
  }
  return uploads.map((upload) => outcomes.get(upload.key) ?? { upload, asExpected: false });
}

export function outcomeTable(outcomes: readonly UploadOutcome[], withExpectations: boolean): string {
  const headers = ['key', 'verdict', 'reason', 'where it ended', 'execution name', 'ms'];
  if (withExpectations) headers.push('expected');
  const rows = outcomes.map(({ upload, notification, latencyMs, asExpected }) => {
    const row = notification
      ? [
          upload.key,
          notification.verdict,
          describeReason(notification),
          describePlacement(notification),
          executionNameOf(notification.executionArn),
          String(latencyMs ?? ''),
        ]
      : [upload.key, '(no result)', 'timed out waiting for the result', '', '', ''];
    if (withExpectations) {
      const { verdict, reason, signature } = upload.expected ?? {};
      const expected = [verdict, reason, signature && `*${signature}*`].filter(Boolean).join(' ');
      row.push(`${asExpected ? 'ok' : 'MISMATCH'}: ${expected}`);
    }
    return row;
  });
  return renderTable(headers, rows);
}
