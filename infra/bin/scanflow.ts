#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { pipelinePropsFromConfig, readScanflowConfig } from '../lib/config.js';
import { ScanflowStack } from '../lib/scanflow-stack.js';

const app = new App();
// Configuration errors, unknown keys included, stop synth with one message listing every problem.
const config = readScanflowConfig((key) => app.node.tryGetContext(key), Object.keys(app.node.getAllContext()));

new ScanflowStack(app, config.stackName, {
  description: 'scanflow: S3 malware scanning with Step Functions and a warm ClamAV worker pool on Fargate',
  ...(config.account && config.region ? { env: { account: config.account, region: config.region } } : {}),
  ...(config.availabilityZones ? { availabilityZones: config.availabilityZones } : {}),
  pipeline: (stack) => pipelinePropsFromConfig(stack, config),
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
