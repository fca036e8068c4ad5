import { Annotations, Stack } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/**
 * The pipeline names object versions everywhere (start-scan pins one, the verdict is written on it, the copy
 * and the delete name it), so an unversioned bucket would tag, move or delete whatever is current instead.
 */

/** The versioning status a bucket's template will carry, overrides and Aspects included. */
export function renderedVersioningStatus(bucket: s3.Bucket): unknown {
  const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
  const rendered = Stack.of(bucket).resolve(cfnBucket._toCloudFormation()) as {
    Resources: Record<string, { Properties?: { VersioningConfiguration?: { Status?: unknown } } }>;
  };
  const resource = Object.values(rendered.Resources)[0];
  return resource?.Properties?.VersioningConfiguration?.Status;
}

/**
 * Fails synth when a bucket the stack creates would be deployed without versioning Enabled, whatever turned
 * it off (an Aspect, an escape hatch, a property override). Validations run after Aspects, on the final tree.
 */
export function requireVersioning(scope: Construct, buckets: readonly s3.Bucket[]): void {
  scope.node.addValidation({
    validate: () =>
      buckets.flatMap((bucket) => {
        const status = renderedVersioningStatus(bucket);
        return status === 'Enabled'
          ? []
          : [
              `${bucket.node.path} must have versioning Enabled (it would be ${JSON.stringify(status ?? 'unset')}): the pipeline tags, copies and deletes exact object versions`,
            ];
      }),
  });
}

/** Imported buckets cannot be inspected at synth: say what start-scan will do with unversioned ones. */
export function warnImportedBucketsNeedVersioning(scope: Construct, bucketNames: readonly string[]): void {
  if (bucketNames.length === 0) return;
  Annotations.of(scope).addWarningV2(
    'scanflow:importedBucketVersioning',
    `Imported protected buckets must have versioning Enabled (${bucketNames.join(', ')}): start-scan refuses objects without a version id (verdict Error, reason unversioned-bucket) instead of scanning them.`,
  );
}
