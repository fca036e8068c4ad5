import { CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ScanPipeline } from './scan-pipeline.js';
import type { ScanPipelineProps } from './scan-pipeline-props.js';

export interface ScanflowStackProps extends StackProps {
  /**
   * The pipeline's props, or a function that builds them inside the stack (to import keys, topics or
   * buckets by ARN or name).
   * @default - every ScanPipeline default
   */
  readonly pipeline?: ScanPipelineProps | ((stack: Stack) => ScanPipelineProps);
  /**
   * Availability zones for the new VPC. Given explicitly (from `cdk.json`), synth needs no AWS lookup even
   * for an environment-specific stack.
   * @default - the region's first two zones, resolved by CloudFormation (Fn::GetAZs)
   */
  readonly availabilityZones?: readonly string[];
}

/** The ready-made deployment: one ScanPipeline with its outputs, acknowledged for cdk-nag AwsSolutions. */
export class ScanflowStack extends Stack {
  readonly pipeline: ScanPipeline;
  private readonly fixedAvailabilityZones?: readonly string[];

  constructor(scope: Construct, id: string, props: ScanflowStackProps = {}) {
    super(scope, id, props);
    this.fixedAvailabilityZones = props.availabilityZones;
    const pipelineProps = typeof props.pipeline === 'function' ? props.pipeline(this) : props.pipeline;
    this.pipeline = new ScanPipeline(this, 'Pipeline', pipelineProps);

    const out = (name: string, value: string, description: string) => new CfnOutput(this, name, { value, description });
    for (const [i, bucket] of this.pipeline.protectedBuckets.entries()) {
      out(`ProtectedBucket${i}`, bucket.bucketName, 'Upload here: every new object is scanned');
    }
    out('DestinationBucketName', this.pipeline.destinationBucket.bucketName, 'Clean objects are promoted here');
    out('QuarantineBucketName', this.pipeline.quarantineBucket.bucketName, 'Infected objects are moved here');
    out('ResultsTopicArn', this.pipeline.resultsTopic.topicArn, 'One message per scanned object');
    out('StateMachineArn', this.pipeline.stateMachine.stateMachineArn, 'scan-object executions');
    out(
      'DashboardUrl',
      `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.pipeline.monitoring.dashboard.dashboardName}`,
      'CloudWatch dashboard',
    );
  }

  /**
   * Never looks zones up: a fixed list when configured, otherwise CloudFormation picks the first two of the
   * deployment region, which keeps synth offline for environment-specific stacks too.
   */
  override get availabilityZones(): string[] {
    if (this.fixedAvailabilityZones && this.fixedAvailabilityZones.length > 0) return [...this.fixedAvailabilityZones];
    return [0, 1].map((i) => Fn.select(i, Fn.getAzs()));
  }
}
