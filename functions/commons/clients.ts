import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * SDK clients for the handlers and the worker. Endpoints come from the SDK's own `AWS_ENDPOINT_URL`
 * (set only by the local runtime); path-style S3 addressing is needed there because bucket subdomains of
 * 127.0.0.1 do not resolve. On AWS neither variable is set and the SDK defaults apply.
 */
export interface ClientOptions {
  readonly region?: string;
  readonly endpoint?: string;
  readonly forcePathStyle?: boolean;
  /** The SDK's retry behaviour; its default is standard mode with three attempts. */
  readonly retry?: { readonly mode: 'standard' | 'adaptive'; readonly maxAttempts: number };
}

function fromEnvironment(options: ClientOptions): {
  region?: string;
  endpoint?: string;
  retryMode?: string;
  maxAttempts?: number;
} {
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  return {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(options.retry ? { retryMode: options.retry.mode, maxAttempts: options.retry.maxAttempts } : {}),
  };
}

export function createS3Client(options: ClientOptions = {}): S3Client {
  const forcePathStyle = options.forcePathStyle ?? process.env.S3_FORCE_PATH_STYLE === 'true';
  return new S3Client({ ...fromEnvironment(options), forcePathStyle });
}

export function createSfnClient(options: ClientOptions = {}): SFNClient {
  return new SFNClient(fromEnvironment(options));
}

export function createSqsClient(options: ClientOptions = {}): SQSClient {
  return new SQSClient(fromEnvironment(options));
}

export function createSnsClient(options: ClientOptions = {}): SNSClient {
  return new SNSClient(fromEnvironment(options));
}

export function createCloudWatchClient(options: ClientOptions = {}): CloudWatchClient {
  return new CloudWatchClient(fromEnvironment(options));
}
