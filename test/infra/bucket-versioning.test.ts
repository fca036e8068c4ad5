import { Aspects, type IAspect } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { synthScanflow } from './synth.js';

/** The pipeline tags, copies and deletes exact versions: a bucket it creates must never lose versioning. */

const createdBucket = (stack: ReturnType<typeof synthScanflow>['stack'], which: string): s3.CfnBucket => {
  const bucket = stack.pipeline.node.findChild(which) as s3.Bucket;
  return bucket.node.defaultChild as s3.CfnBucket;
};

test.each(['StagingBucket', 'DestinationBucket', 'QuarantineBucket'])(
  'synth fails when an escape hatch suspends versioning on %s',
  (which) => {
    const synthesized = synthScanflow({}, { prebuiltImage: true });
    createdBucket(synthesized.stack, which).versioningConfiguration = { status: 'Suspended' };
    expect(() => synthesized.template).toThrow(
      new RegExp(`Scanflow/Pipeline/${which} must have versioning Enabled \\(it would be "Suspended"\\)`),
    );
  },
);

test('synth fails when a property override removes the versioning configuration', () => {
  const synthesized = synthScanflow({}, { prebuiltImage: true });
  createdBucket(synthesized.stack, 'StagingBucket').addPropertyDeletionOverride('VersioningConfiguration');
  expect(() => synthesized.template).toThrow(/StagingBucket must have versioning Enabled \(it would be "unset"\)/);
});

test('synth fails when an Aspect turns versioning off', () => {
  const synthesized = synthScanflow({}, { prebuiltImage: true });
  const unversion: IAspect = {
    visit(node: IConstruct) {
      if (node instanceof s3.CfnBucket) node.versioningConfiguration = undefined;
    },
  };
  Aspects.of(synthesized.stack).add(unversion);
  expect(() => synthesized.template).toThrow(/QuarantineBucket must have versioning Enabled/);
});

test('the default buckets pass the check (the access-log bucket is not a pipeline bucket and is not checked)', () => {
  const synthesized = synthScanflow({}, { prebuiltImage: true });
  const logs = synthesized.stack.pipeline.node.findChild('AccessLogsBucket') as s3.Bucket;
  (logs.node.defaultChild as s3.CfnBucket).versioningConfiguration = undefined;
  expect(() => synthesized.template).not.toThrow();
});
