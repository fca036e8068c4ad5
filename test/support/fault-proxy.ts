import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small HTTP proxy in front of moto for the answers moto cannot give: it forwards every request unchanged,
 * except those a test marks, which get a scripted AWS-style error instead (an SSE-C object's 400
 * InvalidRequest, Step Functions' ThrottlingException) or run a test's step before they are forwarded (a
 * deletion that must land between an event and start-scan's HeadObject, without racing anything).
 * Point start-scan and the worker at it (AWS_ENDPOINT_URL); the test's own clients keep talking to moto.
 */

/** A request as the rules see it. Request bodies are buffered: everything sent through it is small. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** `Service.Operation` of JSON-protocol calls (X-Amz-Target), e.g. `AWSStepFunctions.StartExecution`. */
  readonly target?: string;
  /** Path-style S3 object calls the rules tell apart; other S3 calls (tagging, lists) have none. */
  readonly s3Object?: { readonly operation: 'HeadObject' | 'GetObject'; readonly bucket: string; readonly key: string };
}

export interface ScriptedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface FaultRule {
  readonly match: (request: ProxiedRequest) => boolean;
  /** How many matching requests the rule acts on; later ones pass through. Default: all of them. */
  readonly times?: number;
  /** Runs before the request is forwarded (or answered); the request waits for it. */
  readonly before?: (request: ProxiedRequest) => Promise<void>;
  /** Answers instead of forwarding. */
  readonly respond?: ScriptedResponse;
}

export interface RuleHandle {
  /** Requests the rule acted on so far. */
  hits(): number;
  remove(): void;
}

export interface FaultProxy {
  readonly endpoint: string;
  /** Rules are tried in the order they were added; the first one that matches and has uses left acts. */
  add(rule: FaultRule): RuleHandle;
  close(): Promise<void>;
}

/** An S3 error as S3 writes it (REST-XML). A HEAD answer carries no body: the SDK goes by the status. */
export function s3Error(status: number, code: string, message: string): ScriptedResponse {
  return {
    status,
    headers: { 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`,
  };
}

/** What S3 answers to a HeadObject/GetObject without the customer key of an SSE-C object. */
export const SSE_C_WITHOUT_KEY = s3Error(
  400,
  'InvalidRequest',
  'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.',
);

/** A JSON-protocol error (Step Functions, SQS): `__type` names it. */
export function jsonError(status: number, type: string, message: string): ScriptedResponse {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': type },
    body: JSON.stringify({ __type: type, message }),
  };
}

/** S3 object calls on `key` (path-style addressing, as the local clients use). */
export function s3ObjectCall(operation: 'HeadObject' | 'GetObject', key: string): (request: ProxiedRequest) => boolean {
  return (request) => request.s3Object?.operation === operation && request.s3Object.key === key;
}

/** StartExecution calls whose execution input names an object with this key. */
export function startExecutionOf(key: string): (request: ProxiedRequest) => boolean {
  return (request) => {
    if (request.target !== 'AWSStepFunctions.StartExecution') return false;
    try {
      const call = JSON.parse(request.body.toString('utf8')) as { input?: string };
      const input = JSON.parse(call.input ?? '{}') as { object?: { key?: string } };
      return input.object?.key === key;
    } catch {
      return false;
    }
  };
}

function classify(method: string, url: URL, headers: IncomingHttpHeaders): ProxiedRequest['s3Object'] {
  if (headers['x-amz-target'] !== undefined) return undefined;
  const [, bucket, ...keyParts] = url.pathname.split('/');
  if (!bucket || keyParts.length === 0) return undefined;
  const key = keyParts.map((part) => decodeURIComponent(part)).join('/');
  if (!key) return undefined;
  // Sub-resources (?tagging, ?acl, ?uploads…) are other operations; the SDK marks GetObject with x-id.
  const subresources = [...url.searchParams.keys()].filter((name) => name !== 'versionId' && name !== 'x-id');
  if (subresources.length > 0) return undefined;
  if (method === 'HEAD') return { operation: 'HeadObject', bucket, key };
  if (method === 'GET') return { operation: 'GetObject', bucket, key };
  return undefined;
}

export async function startFaultProxy(upstreamEndpoint: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamEndpoint);
  const rules: { rule: FaultRule; hits: number; removed: boolean }[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      void (async () => {
        const url = new URL(incoming.url ?? '/', 'http://proxy');
        const method = incoming.method ?? 'GET';
        const target = incoming.headers['x-amz-target'];
        const s3Object = classify(method, url, incoming.headers);
        const request: ProxiedRequest = {
          method,
          path: url.pathname,
          query: url.searchParams,
          headers: incoming.headers,
          body: Buffer.concat(chunks),
          ...(typeof target === 'string' ? { target } : {}),
          ...(s3Object ? { s3Object } : {}),
        };
        const entry = rules.find(
          (candidate) =>
            !candidate.removed &&
            candidate.hits < (candidate.rule.times ?? Number.POSITIVE_INFINITY) &&
            candidate.rule.match(request),
        );
        if (entry) {
          entry.hits += 1;
          await entry.rule.before?.(request);
          const scripted = entry.rule.respond;
          if (scripted) {
            outgoing.writeHead(scripted.status, { ...scripted.headers, 'x-amz-request-id': 'fault-proxy' });
            outgoing.end(method === 'HEAD' ? undefined : scripted.body);
            return;
          }
        }
        const forwarded = httpRequest(
          {
            host: upstream.hostname,
            port: upstream.port,
            method,
            path: incoming.url,
            headers: incoming.headers,
          },
          (answer) => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(outgoing);
          },
        );
        // The caller gave up (an aborted long poll): stop waiting for moto's answer too.
        outgoing.on('close', () => {
          if (!outgoing.writableFinished) forwarded.destroy();
        });
        forwarded.on('error', (error) => {
          if (outgoing.destroyed) return;
          if (!outgoing.headersSent) outgoing.writeHead(502, { 'content-type': 'text/plain' });
          outgoing.end(`fault proxy: ${error.message}`);
        });
        forwarded.end(request.body);
      })().catch((error: unknown) => {
        // A failing `before` step is the test's bug: answer 500 so it shows up as a failed call.
        if (!outgoing.headersSent) outgoing.writeHead(500, { 'content-type': 'text/plain' });
        outgoing.end(`fault proxy: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    add(rule) {
      const entry = { rule, hits: 0, removed: false };
      rules.push(entry);
      return {
        hits: () => entry.hits,
        remove: () => {
          entry.removed = true;
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        // Long polls (the worker's ReceiveMessage) would otherwise hold close() for their whole wait.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
