import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The production definition, loaded by CDK, the local runtime and the tests alike. */
export const SCAN_OBJECT_ASL_PATH = join(dirname(fileURLToPath(import.meta.url)), 'scan-object.asl.json');

/** What the definition's `${Placeholders}` stand for. */
export interface ScanObjectResources {
  readonly scanJobsQueueUrl: string;
  readonly destinationBucket: string;
  readonly quarantineBucket: string;
  readonly resultsTopicArn: string;
}

/** The one substitution map: CDK's `definitionSubstitutions` and the local runtime both use it. */
export function scanObjectSubstitutions(resources: ScanObjectResources): Record<string, string> {
  return {
    ScanJobsQueueUrl: resources.scanJobsQueueUrl,
    DestinationBucket: resources.destinationBucket,
    QuarantineBucket: resources.quarantineBucket,
    ResultsTopicArn: resources.resultsTopicArn,
  };
}

export function readScanObjectDefinitionTemplate(): string {
  return readFileSync(SCAN_OBJECT_ASL_PATH, 'utf8');
}

/**
 * Resolves every `${Name}` the way Step Functions does for definitionSubstitutions, and fails if the
 * definition names a placeholder the map does not have, so a half-substituted definition never ships.
 */
export function renderDefinition(template: string, substitutions: Record<string, string>): string {
  const missing = new Set<string>();
  const rendered = template.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => {
    const value = substitutions[name];
    if (value === undefined) {
      missing.add(name);
      return whole;
    }
    // Values land inside JSON strings: escape them as JSON would.
    return JSON.stringify(value).slice(1, -1);
  });
  if (missing.size > 0) {
    throw new Error(`Definition placeholders without a value: ${[...missing].join(', ')}`);
  }
  return rendered;
}

export function renderScanObjectDefinition(resources: ScanObjectResources): string {
  return renderDefinition(readScanObjectDefinitionTemplate(), scanObjectSubstitutions(resources));
}
