import { describe, expect, it } from '@jest/globals';
import { renderRetroScanDefinition } from '../../statemachines/retro-scan.js';

const resources = { scanRequestsQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/scan-requests' };

interface Map {
  ItemBatcher?: { BatchInput: Record<string, string> };
  ItemSelector?: Record<string, string>;
  ItemReader: { Resource: string };
  MaxConcurrencyPath: string;
  ToleratedFailureCountPath: string;
  ItemProcessor: {
    ProcessorConfig: { Mode: string };
    States: { SendScanRequest: { Parameters: { QueueUrl: string; MessageBody: Record<string, string> } } };
  };
}
const mapOf = (definition: string) => (JSON.parse(definition) as { States: { RequestScans: Map } }).States.RequestScans;

describe('retro-scan definition', () => {
  it('in production lists with ListObjectsV2, batches, and sends each batch as one scan request', () => {
    const map = mapOf(renderRetroScanDefinition(resources));
    expect(map.ItemReader.Resource).toBe('arn:aws:states:::s3:listObjectsV2');
    expect(map.ItemProcessor.ProcessorConfig.Mode).toBe('DISTRIBUTED');
    expect(map.MaxConcurrencyPath).toBe('$.maxConcurrency');
    expect(map.ToleratedFailureCountPath).toBe('$.toleratedFailureCount');
    expect(map.ItemBatcher?.BatchInput).toEqual({
      'bucket.$': '$.bucket',
      'generation.$': '$.generation',
      'filter.$': '$.filter',
    });
    const send = map.ItemProcessor.States.SendScanRequest.Parameters;
    expect(send.QueueUrl).toBe(resources.scanRequestsQueueUrl);
    expect(send.MessageBody).toMatchObject({ scanflow: 'scan-request', 'items.$': '$.Items' });
  });

  it('for the local engine (no ItemBatcher in moto) sends one item per request with the same fields', () => {
    const map = mapOf(renderRetroScanDefinition(resources, { itemBatcher: false }));
    expect(map.ItemBatcher).toBeUndefined();
    expect(map.ItemSelector).toMatchObject({ 'item.$': '$$.Map.Item.Value' });
    const body = map.ItemProcessor.States.SendScanRequest.Parameters.MessageBody;
    expect(body).toMatchObject({ scanflow: 'scan-request', 'items.$': 'States.Array($.item)' });
    // Everything else is the production definition.
    const production = mapOf(renderRetroScanDefinition(resources));
    expect({ ...map, ItemSelector: undefined, ItemProcessor: undefined }).toEqual({
      ...production,
      ItemBatcher: undefined,
      ItemProcessor: undefined,
    });
  });
});
