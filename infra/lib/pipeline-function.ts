import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface PipelineFunctionProps {
  readonly repoRoot: string;
  readonly entry: string;
  readonly description: string;
  /** What the role is for, in the role's description. */
  readonly roleDescription: string;
  /** `POWERTOOLS_SERVICE_NAME`. */
  readonly serviceName: string;
  readonly metricsNamespace: string;
  readonly logRetention: logs.RetentionDays;
  readonly memorySize: number;
  readonly environment: Record<string, string>;
  readonly reservedConcurrentExecutions?: number;
}

/**
 * One of the pipeline's Lambdas: its own log group and role (`<id>Logs`, `<id>Role`) and a Node 22 ARM64
 * function bundled locally with esbuild as ESM, SDK included — the version we test is the version that runs.
 */
export function createPipelineFunction(scope: Construct, id: string, props: PipelineFunctionProps): NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: props.roleDescription,
  });
  logGroup.grantWrite(role);
  return new NodejsFunction(scope, id, {
    description: props.description,
    entry: props.entry,
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize,
    timeout: Duration.seconds(30),
    role,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    ...(props.reservedConcurrentExecutions !== undefined
      ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
      : {}),
    projectRoot: props.repoRoot,
    depsLockFilePath: join(props.repoRoot, 'package-lock.json'),
    environment: {
      ...props.environment,
      POWERTOOLS_SERVICE_NAME: props.serviceName,
      POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
      NODE_OPTIONS: '--enable-source-maps',
    },
    bundling: {
      format: OutputFormat.ESM,
      mainFields: ['module', 'main'],
      banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
      target: 'node22',
      minify: true,
      sourceMap: true,
      externalModules: [],
      forceDockerBundling: false,
    },
  });
}
