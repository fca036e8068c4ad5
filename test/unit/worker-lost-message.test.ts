import { describe, expect, it } from '@jest/globals';
import { isMessageLost } from '../../scanner-image/src/worker.js';

describe('a job whose message is no longer the worker’s', () => {
  it('is recognised from what SQS answers to ChangeMessageVisibility', () => {
    // AWS: InvalidParameterValue "Message does not exist or is not available for visibility timeout change";
    // moto and AWS: ReceiptHandleIsInvalid for a deleted message; MessageNotInflight for a visible one.
    for (const name of ['ReceiptHandleIsInvalid', 'MessageNotInflight', 'InvalidParameterValue']) {
      expect(isMessageLost(Object.assign(new Error('x'), { name }))).toBe(true);
    }
  });

  it('is not assumed from a transient failure, which only gets logged', () => {
    for (const name of ['ThrottlingException', 'TimeoutError', 'InternalError', '']) {
      expect(isMessageLost(Object.assign(new Error('x'), { name }))).toBe(false);
    }
  });
});
