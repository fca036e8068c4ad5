import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RescanFilter } from '../functions/commons/rescan.js';
import { renderDefinition } from './scan-object.js';

/** The retro-scan definition, loaded by CDK, the local runtime and the tests alike. */
export const RETRO_SCAN_ASL_PATH = join(dirname(fileURLToPath(import.meta.url)), 'retro-scan.asl.json');

export interface RetroScanResources {
  /** Where each batch's scan request goes: start-scan's queue. */
  readonly scanRequestsQueueUrl: string;
}

/** The one substitution map: CDK's `definitionSubstitutions` and the local runtime both use it. */
export function retroScanSubstitutions(resources: RetroScanResources): Record<string, string> {
  return { ScanRequestsQueueUrl: resources.scanRequestsQueueUrl };
}

export function readRetroScanDefinitionTemplate(): string {
  return readFileSync(RETRO_SCAN_ASL_PATH, 'utf8');
}

export interface RetroScanRendering {
  /**
   * The local engine (moto 5.2.5) rejects any ItemBatcher at CreateStateMachine. Without it each listed
   * object is its own item: an ItemSelector gives it the run's bucket, generation and filter (what
   * BatchInput carries in production) and its scan request names one item. Same messages to start-scan,
   * one per object instead of one per batch (README, "Local and production").
   */
  readonly itemBatcher: boolean;
}

interface MapState {
  ItemBatcher?: unknown;
  ItemSelector?: unknown;
  ItemProcessor: { States: { SendScanRequest: { Parameters: { MessageBody: Record<string, unknown> } } } };
}

export function renderRetroScanDefinition(
  resources: RetroScanResources,
  rendering: RetroScanRendering = { itemBatcher: true },
): string {
  const rendered = renderDefinition(readRetroScanDefinitionTemplate(), retroScanSubstitutions(resources));
  if (rendering.itemBatcher) return rendered;
  const definition = JSON.parse(rendered) as { States: { RequestScans: MapState } };
  const map = definition.States.RequestScans;
  delete map.ItemBatcher;
  map.ItemSelector = {
    'bucket.$': '$.bucket',
    'generation.$': '$.generation',
    'filter.$': '$.filter',
    'item.$': '$$.Map.Item.Value',
  };
  map.ItemProcessor.States.SendScanRequest.Parameters.MessageBody = {
    scanflow: 'scan-request',
    'bucket.$': '$.bucket',
    'generation.$': '$.generation',
    'filter.$': '$.filter',
    'items.$': 'States.Array($.item)',
  };
  return JSON.stringify(definition);
}

/** One retro run's execution input. */
export interface RetroScanInput {
  readonly bucket: string;
  readonly prefix: string;
  readonly generation: { readonly trigger: 'retro'; readonly id: string };
  readonly filter: RescanFilter | null;
  readonly maxConcurrency: number;
  readonly toleratedFailureCount: number;
}

export const RETRO_DEFAULTS = { maxConcurrency: 10, toleratedFailureCount: 0 } as const;
