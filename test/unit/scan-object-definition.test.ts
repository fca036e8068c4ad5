import { describe, expect, it } from '@jest/globals';
import aslValidator from 'asl-validator';
import * as errors from '../../functions/commons/errors.js';
import { GUARANTEED_VERDICT_TAGS, verdictTags } from '../../functions/commons/verdict.js';
import {
  readScanObjectDefinitionTemplate,
  renderDefinition,
  renderScanObjectDefinition,
  scanObjectSubstitutions,
} from '../../statemachines/scan-object.js';

const resources = {
  scanJobsQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/scan-jobs',
  destinationBucket: 'clean-bucket',
  quarantineBucket: 'quarantine-bucket',
  resultsTopicArn: 'arn:aws:sns:eu-west-1:123456789012:scan-results',
};

interface AslState {
  Type: string;
  HeartbeatSeconds?: number;
  HeartbeatSecondsPath?: string;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[]; Next: string }[];
  Parameters?: Record<string, unknown>;
}
interface AslDefinition {
  States: Record<string, AslState>;
}

const definition = JSON.parse(renderScanObjectDefinition(resources)) as AslDefinition;

describe('statemachines/scan-object.asl.json', () => {
  it('is valid Amazon States Language once its placeholders are resolved', () => {
    const { isValid, errorsText } = aslValidator(definition);
    expect(errorsText('\n')).toBe('');
    expect(isValid).toBe(true);
  });

  it('has a value for every placeholder and leaves no ${ behind', () => {
    const rendered = renderScanObjectDefinition(resources);
    expect(rendered).not.toContain('${');
    const named = new Set([...readScanObjectDefinitionTemplate().matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]));
    expect([...named].sort()).toEqual(Object.keys(scanObjectSubstitutions(resources)).sort());
  });

  it('refuses to render a definition with a placeholder it has no value for', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an ASL placeholder, not a template literal
    expect(() => renderDefinition('{"a":"${Missing}"}', {})).toThrow(/Missing/);
  });

  it('names in ErrorEquals only States.* errors, AWS service errors, or errors the worker throws', () => {
    const exported = new Set(
      Object.values(errors)
        .filter((value) => typeof value === 'function')
        .map((ErrorClass) => new (ErrorClass as new (message: string) => Error)('probe').name),
    );
    const named = Object.values(definition.States).flatMap((state) =>
      [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((rule) => rule.ErrorEquals),
    );
    // `Service.Name` errors come from AWS (S3.…, s3.… on the local engine); everything else is ours.
    const custom = named.filter((name) => !name.startsWith('States.') && !/^[A-Za-z0-9]+\.[A-Za-z]+$/.test(name));
    expect(custom.length).toBeGreaterThan(0);
    for (const name of custom) expect(exported).toContain(name);
  });

  it('never lets waiting for a worker end a scan: ScanObject has no heartbeat clock, only the timeout covering the wait', () => {
    const scanObject = definition.States.ScanObject as AslState;
    expect(scanObject.HeartbeatSeconds).toBeUndefined();
    expect(scanObject.HeartbeatSecondsPath).toBeUndefined();
    expect(scanObject.TimeoutSecondsPath).toBe('$.limits.timeoutSeconds');
    // A timeout or a job that kept killing its workers is final: a retry would only queue a second message.
    const retried = (scanObject.Retry ?? []).flatMap((rule) => rule.ErrorEquals);
    for (const name of ['States.Timeout', 'States.HeartbeatTimeout', 'States.ALL', 'WorkerLostError']) {
      expect(retried).not.toContain(name);
    }
    const caughtBy = (name: string) => scanObject.Catch?.find((rule) => rule.ErrorEquals.includes(name))?.Next;
    expect(caughtBy('States.Timeout')).toBe('RecordScanError');
    expect(caughtBy('WorkerLostError')).toBe('RecordScanError');
    // The message names its execution: a worker checks it before reading a job whose token may be dead.
    const body = (scanObject.Parameters as { MessageBody: Record<string, string> }).MessageBody;
    expect(body['executionArn.$']).toBe('$$.Execution.Id');
  });

  it('writes the first tags of the Error order on the error path, no more than always fit', () => {
    const recordError = definition.States.RecordScanError?.Parameters as { tags: { Key: string }[] };
    const keys = recordError.tags.map((tag) => tag.Key);
    const context = { scannedAt: 'now', databaseVersion: '1', uploadedAt: 'then' };
    expect(keys).toEqual(
      verdictTags({ verdict: 'Error', reason: 'x' }, context, GUARANTEED_VERDICT_TAGS).map((tag) => tag.Key),
    );
  });

  it("only quarantines Infected and only promotes a Clean on the worker's promotion decision", () => {
    interface Rule {
      readonly Variable?: string;
      readonly StringEquals?: string;
      readonly IsPresent?: boolean;
      readonly And?: Rule[];
      readonly Next?: string;
    }
    const route = definition.States.RouteByVerdict as unknown as { Choices: Rule[]; Default: string };
    const summary = route.Choices.map((rule) => [
      (rule.And ?? [rule]).filter((c) => c.StringEquals !== undefined).map((c) => `${c.Variable}=${c.StringEquals}`),
      rule.Next,
    ]);
    expect(summary).toEqual([
      [['$.scan.verdict=Infected'], 'QuarantineObject'],
      [['$.scan.verdict=Clean', '$.scan.promotion.decision=promote-new'], 'PromoteObject'],
      [['$.scan.verdict=Clean', '$.scan.promotion.decision=promote-over'], 'PromoteOverOlderPromotion'],
      [['$.scan.verdict=Clean', '$.scan.promotion.decision=superseded'], 'RemoveSupersededVersion'],
    ]);
    expect(route.Default).toBe('NotifyResult');
  });
});
