import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { CreateTopicCommand, type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createS3Client, createSfnClient, createSnsClient, createSqsClient } from '../../functions/commons/clients.js';
import { SCAN_JOBS_MAX_RECEIVE_COUNT } from '../../functions/commons/scan-execution.js';
import { SCAN_REQUESTS_MAX_RECEIVE_COUNT } from '../../functions/start-scan/delivery.js';
import { renderScanObjectDefinition } from '../../statemachines/scan-object.js';

/** Everything the local pipeline is made of, named as on AWS. Written to .scanflow/local.json. */
export interface LocalLayout {
  readonly endpoint: string;
  readonly region: string;
  readonly buckets: { readonly staging: string; readonly destination: string; readonly quarantine: string };
  readonly queues: {
    readonly scanRequests: string;
    readonly scanRequestsDlq: string;
    readonly scanJobs: string;
    readonly scanJobsDlq: string;
    readonly results: string;
    readonly resultsMetrics: string;
  };
  readonly resultsTopicArn: string;
  readonly stateMachineArn: string;
}

export interface LocalClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  readonly sfn: SFNClient;
  readonly events: EventBridgeClient;
}

/** Clients for the local AWS; S3 path-style because bucket subdomains of 127.0.0.1 do not resolve. */
export function createLocalClients(endpoint: string, region: string): LocalClients {
  const options = { endpoint, region };
  return {
    s3: createS3Client({ ...options, forcePathStyle: true }),
    sqs: createSqsClient(options),
    sns: createSnsClient(options),
    sfn: createSfnClient(options),
    events: new EventBridgeClient(options),
  };
}

export const LOCAL_ROLE_ARN = 'arn:aws:iam::123456789012:role/scanflow-local';

async function createVersionedBucket(s3: S3Client, name: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
}

async function createQueue(
  sqs: SQSClient,
  name: string,
  options: { visibilityTimeoutSeconds: number; deadLetterArn?: string; maxReceiveCount?: number },
): Promise<{ url: string; arn: string }> {
  const attributes: Record<string, string> = { VisibilityTimeout: String(options.visibilityTimeoutSeconds) };
  if (options.deadLetterArn) {
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: options.deadLetterArn,
      maxReceiveCount: options.maxReceiveCount ?? 5,
    });
  }
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!created.QueueUrl) throw new Error(`queue ${name} was not created`);
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = attrs.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${name} has no ARN`);
  return { url: created.QueueUrl, arn };
}

/**
 * Creates the same layout the CDK stack deploys: versioned staging/destination/quarantine buckets,
 * S3 → EventBridge → SQS scan-requests (with DLQ), scan-jobs (with DLQ), an SNS topic with a queue to read
 * results from, and the scan-object state machine from the production ASL file.
 */
export async function provisionLocalPipeline(
  clients: LocalClients,
  options: { endpoint: string; region: string; prefix: string; scanJobsVisibilitySeconds?: number },
): Promise<LocalLayout> {
  const { s3, sqs, sns, sfn, events } = clients;
  const p = options.prefix;
  const buckets = { staging: `${p}-staging`, destination: `${p}-destination`, quarantine: `${p}-quarantine` };
  for (const bucket of Object.values(buckets)) await createVersionedBucket(s3, bucket);

  const scanRequestsDlq = await createQueue(sqs, `${p}-scan-requests-dlq`, { visibilityTimeoutSeconds: 30 });
  const scanRequests = await createQueue(sqs, `${p}-scan-requests`, {
    visibilityTimeoutSeconds: 30,
    deadLetterArn: scanRequestsDlq.arn,
    // As deployed: sized together with start-scan's StartExecution retries.
    maxReceiveCount: SCAN_REQUESTS_MAX_RECEIVE_COUNT,
  });
  const scanJobsDlq = await createQueue(sqs, `${p}-scan-jobs-dlq`, { visibilityTimeoutSeconds: 30 });
  const scanJobs = await createQueue(sqs, `${p}-scan-jobs`, {
    // A worker that dies mid-scan leaves its job to be seen again after this long.
    visibilityTimeoutSeconds: options.scanJobsVisibilitySeconds ?? 30,
    deadLetterArn: scanJobsDlq.arn,
    // As deployed: above the worker's own limit of lost workers, so only jobs whose token could not be
    // completed reach the DLQ.
    maxReceiveCount: SCAN_JOBS_MAX_RECEIVE_COUNT,
  });
  const results = await createQueue(sqs, `${p}-results`, { visibilityTimeoutSeconds: 30 });
  const resultsMetrics = await createQueue(sqs, `${p}-results-metrics`, { visibilityTimeoutSeconds: 30 });

  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: buckets.staging,
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    }),
  );
  const ruleName = `${p}-object-created`;
  await events.send(
    new PutRuleCommand({
      Name: ruleName,
      EventPattern: JSON.stringify({
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [buckets.staging] } },
      }),
    }),
  );
  await events.send(
    new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'scan-requests', Arn: scanRequests.arn }] }),
  );

  const topic = await sns.send(new CreateTopicCommand({ Name: `${p}-results` }));
  if (!topic.TopicArn) throw new Error('results topic was not created');
  const subscribe = (queueArn: string, rawMessageDelivery: boolean) =>
    sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: { RawMessageDelivery: String(rawMessageDelivery) },
      }),
    );
  // What a user's subscriber sees (the SNS envelope), and the result recorder's queue with raw delivery
  // as the stack configures it.
  await subscribe(results.arn, false);
  await subscribe(resultsMetrics.arn, true);

  const machine = await sfn.send(
    new CreateStateMachineCommand({
      name: `${p}-scan-object`,
      roleArn: LOCAL_ROLE_ARN,
      type: 'STANDARD',
      definition: renderScanObjectDefinition({
        scanJobsQueueUrl: scanJobs.url,
        destinationBucket: buckets.destination,
        quarantineBucket: buckets.quarantine,
        resultsTopicArn: topic.TopicArn,
      }),
    }),
  );
  if (!machine.stateMachineArn) throw new Error('state machine was not created');

  return {
    endpoint: options.endpoint,
    region: options.region,
    buckets,
    queues: {
      scanRequests: scanRequests.url,
      scanRequestsDlq: scanRequestsDlq.url,
      scanJobs: scanJobs.url,
      scanJobsDlq: scanJobsDlq.url,
      results: results.url,
      resultsMetrics: resultsMetrics.url,
    },
    resultsTopicArn: topic.TopicArn,
    stateMachineArn: machine.stateMachineArn,
  };
}
