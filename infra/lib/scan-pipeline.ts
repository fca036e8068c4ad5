import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AdjustmentType } from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { SCAN_JOBS_MAX_RECEIVE_COUNT } from '../../functions/commons/scan-execution.js';
import { SCAN_REQUESTS_MAX_RECEIVE_COUNT } from '../../functions/start-scan/delivery.js';
import { readScanObjectDefinitionTemplate, scanObjectSubstitutions } from '../../statemachines/scan-object.js';
import { applyBucketPolicies, listBucketStatement } from './bucket-policies.js';
import { requireVersioning, warnImportedBucketsNeedVersioning } from './bucket-versioning.js';
import { ScanMonitoring } from './monitoring.js';
import { acknowledgeNagFindings } from './nag-acknowledgements.js';
import { createPipelineFunction } from './pipeline-function.js';
import {
  type ResolvedScanPipelineProps,
  resolveScanPipelineProps,
  type ScanPipelineProps,
} from './scan-pipeline-props.js';
import { SCANNER_HEALTH_CHECK, scannerImageFromRepository } from './scanner-image.js';
import { workerScalingSteps } from './worker-scaling.js';

/** The repository root: the scanner image's build context and the base of the function entries. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const START_SCAN_ENTRY = join(REPO_ROOT, 'functions', 'start-scan', 'handler.ts');
export const RECORD_RESULT_ENTRY = join(REPO_ROOT, 'functions', 'record-result', 'handler.ts');

const STOP_TIMEOUT = Duration.minutes(2); // Fargate's maximum
const WORKER_CONTAINER_NAME = 'scanner';

/**
 * The whole scanflow pipeline: buckets → EventBridge → scan-requests → start-scan → scan-object state
 * machine → scan-jobs → Fargate worker pool → verdict tags, promotion or quarantine → results topic.
 */
export class ScanPipeline extends Construct {
  /** Buckets whose new objects are scanned (staging). */
  readonly protectedBuckets: s3.IBucket[];
  readonly destinationBucket: s3.IBucket;
  readonly quarantineBucket: s3.IBucket;
  readonly resultsTopic: sns.Topic;
  /** Customer-managed key of the results topic (SNS SSE); subscribers that read messages need Decrypt. */
  readonly resultsTopicKey: kms.Key;
  readonly scanRequestsQueue: sqs.Queue;
  readonly scanRequestsDlq: sqs.Queue;
  readonly scanJobsQueue: sqs.Queue;
  readonly scanJobsDlq: sqs.Queue;
  readonly stateMachine: sfn.StateMachine;
  /** Every execution of scan-object: what a worker may DescribeExecution (is this job's execution still running?). */
  readonly scanExecutionsArn: string;
  readonly startScanFunction: NodejsFunction;
  /** Counts every object's final verdict (ScanResults) from the results topic. */
  readonly recordResultFunction: NodejsFunction;
  readonly resultsMetricsQueue: sqs.Queue;
  readonly resultsMetricsDlq: sqs.Queue;
  readonly vpc: ec2.IVpc;
  readonly cluster: ecs.Cluster;
  readonly workerService: ecs.FargateService;
  readonly monitoring: ScanMonitoring;
  readonly props: ResolvedScanPipelineProps;

  constructor(scope: Construct, id: string, props: ScanPipelineProps = {}) {
    super(scope, id);
    const p = resolveScanPipelineProps(props);
    this.props = p;
    const logRetention = p.logRetention ?? logs.RetentionDays.THREE_MONTHS;

    // ---------- Buckets ----------
    const accessLogs = p.accessLogsBucket ?? this.createAccessLogsBucket();
    const newBucket = (bucketId: string, extra: Partial<s3.BucketProps> = {}) =>
      new s3.Bucket(this, bucketId, {
        versioned: true,
        ...(p.bucketEncryptionKey
          ? { encryption: s3.BucketEncryption.KMS, encryptionKey: p.bucketEncryptionKey, bucketKeyEnabled: true }
          : { encryption: s3.BucketEncryption.S3_MANAGED }),
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${bucketId.toLowerCase()}/`,
        removalPolicy: RemovalPolicy.RETAIN,
        lifecycleRules: [{ id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(7) }],
        ...extra,
      });

    const createdBuckets: s3.Bucket[] = [];
    if (p.existingProtectedBucketNames) {
      this.protectedBuckets = p.existingProtectedBucketNames.map((name, i) => {
        const bucket = s3.Bucket.fromBucketName(this, `ProtectedBucket${i}`, name);
        // On an imported bucket this is CDK's BucketNotifications custom resource with Managed=false: it
        // reads the bucket's notification configuration and adds EventBridge, keeping what is there.
        bucket.enableEventBridgeNotification();
        return bucket;
      });
    } else {
      const staging = newBucket('StagingBucket', {
        eventBridgeEnabled: true,
        // The pipeline deletes the exact versions it moved; these are user overwrites and deletions.
        lifecycleRules: [
          { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
          { id: 'ExpireOldVersions', noncurrentVersionExpiration: Duration.days(30) },
        ],
      });
      createdBuckets.push(staging);
      this.protectedBuckets = [staging];
    }
    if (p.existingDestinationBucketName) {
      this.destinationBucket = s3.Bucket.fromBucketName(this, 'DestinationBucket', p.existingDestinationBucketName);
    } else {
      const destination = newBucket('DestinationBucket');
      createdBuckets.push(destination);
      this.destinationBucket = destination;
    }
    if (p.existingQuarantineBucketName) {
      this.quarantineBucket = s3.Bucket.fromBucketName(this, 'QuarantineBucket', p.existingQuarantineBucketName);
    } else {
      const quarantine = newBucket('QuarantineBucket', {
        lifecycleRules: [
          { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
          ...(p.quarantineExpiration
            ? [
                {
                  id: 'ExpireQuarantinedObjects',
                  expiration: p.quarantineExpiration,
                  noncurrentVersionExpiration: p.quarantineExpiration,
                },
              ]
            : []),
        ],
      });
      createdBuckets.push(quarantine);
      this.quarantineBucket = quarantine;
    }
    const protectedObjectArns = this.protectedBuckets.map((b) => b.arnForObjects('*'));
    const placementObjectArns = [this.destinationBucket.arnForObjects('*'), this.quarantineBucket.arnForObjects('*')];
    const protectedBucketArns = this.protectedBuckets.map((b) => b.bucketArn);
    requireVersioning(this, createdBuckets);
    warnImportedBucketsNeedVersioning(
      this,
      this.protectedBuckets.filter((b) => !(b instanceof s3.Bucket)).map((b) => b.bucketName),
    );

    // ---------- Results topic ----------
    const topicKey = new kms.Key(this, 'ResultsTopicKey', {
      description: `${p.pipelineName}: encrypts scan results published to SNS`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.resultsTopic = new sns.Topic(this, 'ResultsTopic', {
      displayName: `${p.pipelineName} scan results`,
      masterKey: topicKey,
      enforceSSL: true,
    });
    this.resultsTopicKey = topicKey;

    // ---------- Queues ----------
    const queueDefaults = { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true } as const;
    /** A queue with its dead-letter queue (kept 14 days, long enough to investigate and redrive). */
    const queueWithDlq = (
      id: string,
      props: { visibilityTimeout: Duration; retentionPeriod: Duration; maxReceiveCount: number },
    ): [sqs.Queue, sqs.Queue] => {
      const dlq = new sqs.Queue(this, `${id}Dlq`, { ...queueDefaults, retentionPeriod: Duration.days(14) });
      const queue = new sqs.Queue(this, id, {
        ...queueDefaults,
        visibilityTimeout: props.visibilityTimeout,
        retentionPeriod: props.retentionPeriod,
        deadLetterQueue: { queue: dlq, maxReceiveCount: props.maxReceiveCount },
      });
      return [queue, dlq];
    };
    [this.scanRequestsQueue, this.scanRequestsDlq] = queueWithDlq('ScanRequests', {
      // Six times the function timeout, as Lambda recommends for SQS event sources.
      visibilityTimeout: Duration.minutes(3),
      retentionPeriod: Duration.days(4),
      // Sized for throttling bursts with start-scan's own retries (functions/start-scan/delivery.ts).
      maxReceiveCount: SCAN_REQUESTS_MAX_RECEIVE_COUNT,
    });
    [this.scanJobsQueue, this.scanJobsDlq] = queueWithDlq('ScanJobs', {
      // The worker sets its job's visibility to three heartbeat intervals as soon as it has checked the token,
      // and keeps extending it: this only covers a worker that dies in between. A lost worker's job becomes
      // visible again and the next worker continues it with the same task token (ScanObject has no heartbeat).
      visibilityTimeout: Duration.minutes(5),
      retentionPeriod: Duration.seconds(p.scanMaxTimeoutSeconds * 2),
      // Above the worker's own limit (MAX_JOB_DELIVERIES, then WorkerLostError): only jobs whose token could
      // not be completed ever reach the DLQ.
      maxReceiveCount: SCAN_JOBS_MAX_RECEIVE_COUNT,
    });
    [this.resultsMetricsQueue, this.resultsMetricsDlq] = queueWithDlq('ResultsMetrics', {
      visibilityTimeout: Duration.minutes(3),
      retentionPeriod: Duration.days(4),
      maxReceiveCount: 5,
    });

    // ---------- State machine ----------
    const stateMachineLogs = new logs.LogGroup(this, 'StateMachineLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'ScanObject', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(readScanObjectDefinitionTemplate()),
      definitionSubstitutions: scanObjectSubstitutions({
        scanJobsQueueUrl: this.scanJobsQueue.queueUrl,
        destinationBucket: this.destinationBucket.bucketName,
        quarantineBucket: this.quarantineBucket.bucketName,
        resultsTopicArn: this.resultsTopic.topicArn,
      }),
      logs: { destination: stateMachineLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    this.scanExecutionsArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: `${this.stateMachine.stateMachineName}:*`,
    });
    const stateMachineRole = this.stateMachine.role;
    // Derived from statemachines/scan-object.asl.json, state by state.
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScanObjectSendsScanJobs',
        actions: ['sqs:SendMessage'],
        resources: [this.scanJobsQueue.queueArn],
      }),
    );
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'TagVerdictAndReadCopySource',
        // TagVerdict writes the tags; PromoteObject/QuarantineObject read the source version with its tags.
        actions: [
          's3:PutObjectTagging',
          's3:PutObjectVersionTagging',
          's3:GetObject',
          's3:GetObjectVersion',
          's3:GetObjectTagging',
          's3:GetObjectVersionTagging',
        ],
        resources: protectedObjectArns,
      }),
    );
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RemoveFromStaging',
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: protectedObjectArns,
      }),
    );
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PromoteOrQuarantineCopies',
        actions: ['s3:PutObject', 's3:PutObjectTagging'],
        resources: placementObjectArns,
      }),
    );
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ConditionalPromotion',
        // PromoteObject/PromoteOverOlderPromotion send If-None-Match / If-Match: S3 evaluates them against the
        // destination's current object, which a conditional write needs s3:GetObject on (S3 conditional writes).
        actions: ['s3:GetObject'],
        resources: [this.destinationBucket.arnForObjects('*')],
      }),
    );
    stateMachineRole.addToPrincipalPolicy(
      listBucketStatement('MissingKeysAre404', [...protectedBucketArns, this.destinationBucket.bucketArn]),
    );
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NotifyResult',
        actions: ['sns:Publish'],
        resources: [this.resultsTopic.topicArn],
      }),
    );
    // SNS encrypts with the topic key on the publisher's behalf: GenerateDataKey + Decrypt, nothing wider.
    stateMachineRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NotifyResultEncryption',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [topicKey.keyArn],
      }),
    );
    if (p.bucketEncryptionKey) {
      // Copies decrypt the source version and encrypt the new object.
      stateMachineRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'BucketEncryption',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [p.bucketEncryptionKey.keyArn],
        }),
      );
    }

    // ---------- start-scan ----------
    this.startScanFunction = createPipelineFunction(this, 'StartScan', {
      repoRoot: REPO_ROOT,
      entry: START_SCAN_ENTRY,
      description: 'Pins the uploaded object version and starts its scan-object execution',
      roleDescription: `${p.pipelineName}: start-scan reads the object identity and starts scan-object`,
      serviceName: 'start-scan',
      metricsNamespace: p.metricsNamespace,
      logRetention,
      memorySize: 512,
      reservedConcurrentExecutions: p.startScanReservedConcurrency,
      environment: {
        STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
        // The `Pipeline` dimension of its metrics (UnversionedObjects is alarmed).
        PIPELINE_NAME: p.pipelineName,
        // Events from the pipeline's own buckets are skipped, whatever the rule matches.
        PIPELINE_BUCKETS: [this.destinationBucket.bucketName, this.quarantineBucket.bucketName].join(','),
        EXCLUDED_KEY_PREFIXES: p.excludedKeyPrefixes.join(','),
        EXCLUDED_KEY_SUFFIXES: p.excludedKeySuffixes.join(','),
        SCAN_QUEUE_WAIT_SECONDS: String(p.scanQueueWaitSeconds),
        SCAN_BASE_TIMEOUT_SECONDS: String(p.scanBaseTimeoutSeconds),
        SCAN_MIN_BYTES_PER_SECOND: String(p.scanMinBytesPerSecond),
        SCAN_MAX_TIMEOUT_SECONDS: String(p.scanMaxTimeoutSeconds),
        COPY_SOURCE_ENCODING: 'url',
      },
    });
    const startScanRole = this.startScanFunction.role as iam.IRole;
    startScanRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'HeadObjectAndTags',
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:GetObjectVersionTagging'],
        resources: protectedObjectArns,
      }),
    );
    startScanRole.addToPrincipalPolicy(listBucketStatement('MissingKeysAre404', protectedBucketArns));
    this.stateMachine.grantStartExecution(startScanRole);
    this.startScanFunction.addEventSource(
      new SqsEventSource(this.scanRequestsQueue, {
        batchSize: p.startScanBatchSize,
        reportBatchItemFailures: true,
        ...(p.startScanBatchSize > 10 ? { maxBatchingWindow: Duration.seconds(1) } : {}),
      }),
    );

    // ---------- record-result: the last step, metrics of every final verdict ----------
    this.resultsTopic.addSubscription(
      new subscriptions.SqsSubscription(this.resultsMetricsQueue, { rawMessageDelivery: true }),
    );
    this.recordResultFunction = createPipelineFunction(this, 'RecordResult', {
      repoRoot: REPO_ROOT,
      entry: RECORD_RESULT_ENTRY,
      description: 'Counts every scanned object by final verdict (EMF metrics) from the results topic',
      roleDescription: `${p.pipelineName}: record-result turns result notifications into CloudWatch metrics (EMF)`,
      serviceName: 'record-result',
      metricsNamespace: p.metricsNamespace,
      logRetention,
      memorySize: 256,
      environment: { PIPELINE_NAME: p.pipelineName },
    });
    this.recordResultFunction.addEventSource(
      new SqsEventSource(this.resultsMetricsQueue, { batchSize: 10, reportBatchItemFailures: true }),
    );

    // ---------- EventBridge ----------
    const objectFilter =
      p.excludedKeyPrefixes.length > 0 ? { key: events.Match.anythingButPrefix(...p.excludedKeyPrefixes) } : undefined;
    const rule = new events.Rule(this, 'ObjectCreatedRule', {
      description: `${p.pipelineName}: new objects in protected buckets become scan requests`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: this.protectedBuckets.map((b) => b.bucketName) },
          ...(objectFilter ? { object: objectFilter } : {}),
        },
      },
    });
    rule.addTarget(
      new targets.SqsQueue(this.scanRequestsQueue, {
        deadLetterQueue: this.scanRequestsDlq,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      }),
    );

    // ---------- Worker pool ----------
    this.vpc = p.vpc ?? this.createVpc(p.natGateways);
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'WorkerTask', {
      cpu: p.workerCpu,
      memoryLimitMiB: p.workerMemoryMiB,
      ephemeralStorageGiB: p.workerEphemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const workerLogs = new logs.LogGroup(this, 'WorkerLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const image = p.scannerImage ?? scannerImageFromRepository(REPO_ROOT);
    taskDefinition.addContainer(WORKER_CONTAINER_NAME, {
      image,
      essential: true,
      stopTimeout: STOP_TIMEOUT,
      healthCheck: SCANNER_HEALTH_CHECK,
      logging: ecs.LogDrivers.awsLogs({ logGroup: workerLogs, streamPrefix: 'worker' }),
      // clamd is reached on the unix socket the image configures (CLAMD_SOCKET in the Dockerfile).
      environment: {
        SCAN_JOBS_QUEUE_URL: this.scanJobsQueue.queueUrl,
        WORKER_CONCURRENCY: String(p.workerConcurrency),
        MAX_OBJECT_BYTES: String(p.maxObjectBytes),
        HEARTBEAT_INTERVAL_SECONDS: String(p.workerHeartbeatIntervalSeconds),
        METRICS_NAMESPACE: p.metricsNamespace,
        METRICS_DIMENSIONS: `Pipeline=${p.pipelineName}`,
        // Leaves ECS's SIGKILL a margin after the worker has finished or released what it holds.
        SHUTDOWN_GRACE_SECONDS: String(STOP_TIMEOUT.toSeconds() - 10),
        ...(p.freshclamMirrorUrl ? { FRESHCLAM_MIRROR_URL: p.freshclamMirrorUrl } : {}),
      },
    });
    const taskRole = taskDefinition.taskRole;
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ConsumeScanJobs',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'],
        resources: [this.scanJobsQueue.queueArn],
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'CompleteScanTasks',
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
        resources: [this.stateMachine.stateMachineArn],
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        // Before reading an object the worker checks that someone still waits for the verdict. SendTaskHeartbeat
        // answers InvalidToken for a token it does not know (and the local engine for every token of a task
        // without HeartbeatSeconds): the job's execution then tells a dead token from a live one.
        sid: 'CheckScanExecutions',
        actions: ['states:DescribeExecution'],
        resources: [this.scanExecutionsArn],
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadObjectsToScan',
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging'],
        resources: protectedObjectArns,
      }),
    );
    // Whether a Clean version may still be promoted without overwriting a newer promotion of the same key.
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadDestinationForPromotionOrder',
        actions: ['s3:GetObject', 's3:GetObjectTagging'],
        resources: [this.destinationBucket.arnForObjects('*')],
      }),
    );
    taskRole.addToPrincipalPolicy(
      listBucketStatement('MissingKeysAre404', [...protectedBucketArns, this.destinationBucket.bucketArn]),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PublishScanMetrics',
        actions: ['cloudwatch:PutMetricData'],
        // PutMetricData has no resource type; the namespace condition is what scopes it.
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': p.metricsNamespace } },
      }),
    );
    if (p.bucketEncryptionKey) {
      taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'DecryptObjectsToScan',
          actions: ['kms:Decrypt'],
          resources: [p.bucketEncryptionKey.keyArn],
        }),
      );
    }

    const workerSecurityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
      vpc: this.vpc,
      description: `${p.pipelineName} scanner workers: no inbound; HTTPS out to AWS APIs, ECR and the signature mirror`,
      allowAllOutbound: false,
    });
    // Everything the worker talks to is HTTPS (SQS, Step Functions, S3, CloudWatch, ECR, freshclam's CDN);
    // a plain-HTTP private mirror gets its own port.
    workerSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs and signature mirror');
    const mirrorPort = p.freshclamMirrorUrl?.startsWith('http://')
      ? Number(new URL(p.freshclamMirrorUrl).port || 80)
      : undefined;
    if (mirrorPort !== undefined) {
      workerSecurityGroup.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(mirrorPort),
        'Private signature mirror (HTTP)',
      );
    }
    this.workerService = new ecs.FargateService(this, 'WorkerService', {
      cluster: this.cluster,
      taskDefinition,
      // No desiredCount: autoscaling owns it, and a template value would reset the pool on every deploy.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      assignPublicIp: false,
      securityGroups: [workerSecurityGroup],
      vpcSubnets: p.workerSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      circuitBreaker: { rollback: true },
      platformVersion: ecs.FargatePlatformVersion.LATEST,
    });
    const scaling = this.workerService.autoScaleTaskCount({ minCapacity: p.minWorkers, maxCapacity: p.maxWorkers });
    scaling.scaleOnMetric('ScaleOnScanJobsBacklog', {
      metric: this.scanJobsBacklogMetric(),
      adjustmentType: AdjustmentType.EXACT_CAPACITY,
      scalingSteps: workerScalingSteps(p.minWorkers, p.maxWorkers, p.workerConcurrency),
      cooldown: Duration.minutes(1),
      evaluationPeriods: 1,
    });

    // ---------- Bucket policies ----------
    applyBucketPolicies(
      this,
      {
        protectedBuckets: this.protectedBuckets,
        destination: this.destinationBucket,
        quarantine: this.quarantineBucket,
      },
      {
        pipeline: {
          stateMachine: stateMachineRole.roleArn,
          startScan: startScanRole.roleArn,
          worker: taskRole.roleArn,
        },
        blockUnscannedReads: p.blockUnscannedReads,
        ...(p.stagingReaderRoleArns ? { stagingReaderRoleArns: p.stagingReaderRoleArns } : {}),
        ...(p.quarantineReaderRoleArn ? { quarantineReaderRoleArn: p.quarantineReaderRoleArn } : {}),
      },
    );

    // ---------- Monitoring ----------
    this.monitoring = new ScanMonitoring(this, 'Monitoring', {
      pipelineName: p.pipelineName,
      metricsNamespace: p.metricsNamespace,
      scanRequests: this.scanRequestsQueue,
      scanRequestsDlq: this.scanRequestsDlq,
      scanJobs: this.scanJobsQueue,
      scanJobsDlq: this.scanJobsDlq,
      stateMachine: this.stateMachine,
      startScan: this.startScanFunction,
      recordResult: this.recordResultFunction,
      resultsMetricsDlq: this.resultsMetricsDlq,
      workerService: this.workerService,
      oldestScanJobAgeAlarmThreshold: p.oldestScanJobAgeAlarmThreshold,
      signatureAgeAlarmThreshold: p.signatureAgeAlarmThreshold,
      minWorkers: p.minWorkers,
      ...(p.alarmTopic ? { alarmTopic: p.alarmTopic } : {}),
    });

    acknowledgeNagFindings(this);
  }

  /** Waiting plus in-flight scan jobs: the work the pool has, whether or not a worker holds it yet. */
  private scanJobsBacklogMetric(): cloudwatch.MathExpression {
    const opts = { period: Duration.minutes(1), statistic: 'Maximum' };
    return new cloudwatch.MathExpression({
      expression: 'visible + inFlight',
      label: 'scan-jobs backlog',
      period: opts.period,
      usingMetrics: {
        visible: this.scanJobsQueue.metricApproximateNumberOfMessagesVisible(opts),
        inFlight: this.scanJobsQueue.metricApproximateNumberOfMessagesNotVisible(opts),
      },
    });
  }

  private createAccessLogsBucket(): s3.Bucket {
    const bucket = new s3.Bucket(this, 'AccessLogsBucket', {
      // Server access log delivery only supports SSE-S3 targets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'ExpireAccessLogs', expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) },
      ],
    });
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server access log target; logging it into itself would loop.',
    });
    return bucket;
  }

  private createVpc(natGateways: number): ec2.Vpc {
    return new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'workers', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        rejected: { trafficType: ec2.FlowLogTrafficType.REJECT },
      },
    });
  }
}
