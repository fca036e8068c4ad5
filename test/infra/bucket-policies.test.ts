import {
  type BucketPolicyOptions,
  type BucketRole,
  bucketPolicyStatements,
  caseVariants,
  scanTagKeyPatterns,
} from '../../infra/lib/bucket-policies.js';
import { asList, type PolicyStatementJson } from './synth.js';

/**
 * The bucket-policy statements, evaluated against the requests the README's access table talks about. The
 * evaluator below implements exactly the IAM condition semantics these Deny statements rely on, including
 * what happens when a key is missing from the request.
 */

const ACCOUNT = 'arn:aws:iam::111111111111';
const SM = `${ACCOUNT}:role/ScanObjectRole`;
const START_SCAN = `${ACCOUNT}:role/StartScanRole`;
const WORKER = `${ACCOUNT}:role/WorkerTaskRole`;
const ADMIN = `${ACCOUNT}:role/Administrator`;
const INVESTIGATOR = `${ACCOUNT}:role/Investigators`;
const SECURITY = `${ACCOUNT}:role/SecurityResponders`;
const BUCKET = 'arn:aws:s3:::bucket';
const OBJECT = `${BUCKET}/in/report.pdf`;

interface Request {
  /** aws:PrincipalArn; undefined for an anonymous request. */
  readonly principal: string | undefined;
  readonly action: string;
  /** Tags the object already has (s3:ExistingObjectTag/<key>). */
  readonly existingTags?: Readonly<Record<string, string>>;
  /** Keys of an x-amz-tagging header or tagging request (s3:RequestObjectTagKeys); undefined when absent. */
  readonly requestTagKeys?: readonly string[];
  /** s3:x-amz-copy-source: a CopyObject or UploadPartCopy. */
  readonly copySource?: string;
}

function glob(pattern: string, value: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(value);
}

function contextValues(request: Request, key: string): string[] | undefined {
  if (key === 'aws:PrincipalArn') return request.principal === undefined ? undefined : [request.principal];
  if (key === 's3:RequestObjectTagKeys')
    return request.requestTagKeys && request.requestTagKeys.length > 0 ? [...request.requestTagKeys] : undefined;
  if (key === 's3:x-amz-copy-source') return request.copySource === undefined ? undefined : [request.copySource];
  const tag = /^s3:ExistingObjectTag\/(.+)$/.exec(key)?.[1];
  if (tag !== undefined) {
    const value = request.existingTags?.[tag];
    return value === undefined ? undefined : [value];
  }
  throw new Error(`the evaluator does not know condition key ${key}`);
}

function conditionHolds(operator: string, key: string, expected: unknown, request: Request): boolean {
  const values = contextValues(request, key);
  const patterns = asList(expected as string | string[]);
  switch (operator) {
    case 'Null':
      return (values === undefined) === (expected === 'true');
    // Negated operators match when the key is missing.
    case 'ArnNotLike':
      return values === undefined || !values.some((v) => patterns.some((p) => glob(p, v)));
    case 'StringNotEquals':
      return values === undefined || !values.some((v) => patterns.includes(v));
    case 'ForAnyValue:StringLike':
      return values?.some((v) => patterns.some((p) => glob(p, v))) === true;
    default:
      throw new Error(`the evaluator does not know condition operator ${operator}`);
  }
}

/** The Sids of the statements that deny `request` on OBJECT. */
function deniedBy(statements: readonly PolicyStatementJson[], request: Request): string[] {
  return statements
    .filter((s) => {
      if (s.Effect !== 'Deny') throw new Error(`unexpected ${s.Effect} statement ${s.Sid}`);
      if (!asList(s.Action).some((a) => glob(a, request.action))) return false;
      if (!asList(s.Resource as string | string[]).some((r) => glob(r, OBJECT))) return false;
      return Object.entries(s.Condition ?? {}).every(([operator, keys]) =>
        Object.entries(keys as Record<string, unknown>).every(([key, expected]) =>
          conditionHolds(operator, key, expected, request),
        ),
      );
    })
    .map((s) => s.Sid ?? '(no Sid)');
}

const pipeline = { stateMachine: SM, startScan: START_SCAN, worker: WORKER };

function policy(role: BucketRole, options: Partial<BucketPolicyOptions> = {}): PolicyStatementJson[] {
  return bucketPolicyStatements(role, BUCKET, {
    created: true,
    pipeline,
    blockUnscannedReads: true,
    ...options,
  }).map((s) => s.toStatementJson() as PolicyStatementJson);
}

const allowed = (statements: readonly PolicyStatementJson[], request: Request) =>
  deniedBy(statements, request).length === 0;

describe('case variants of the scan- prefix', () => {
  test('all 16 spellings of scan-, the lower-case one first', () => {
    const variants = caseVariants('scan-');
    expect(variants.length).toBe(16);
    expect(new Set(variants).size).toBe(16);
    expect(variants[0]).toBe('scan-');
    for (const v of variants) expect(v.toLowerCase()).toBe('scan-');
    expect(variants).toEqual(expect.arrayContaining(['Scan-', 'SCAN-', 'sCaN-', 'scaN-']));
  });

  test('characters without case are kept as they are, and the given spelling comes first', () => {
    expect(caseVariants('a-1')).toEqual(['a-1', 'A-1']);
    expect(caseVariants('Ab')).toEqual(['Ab', 'ab', 'aB', 'AB']);
    expect(caseVariants('')).toEqual(['']);
  });

  test('the tag-key patterns are the 16 spellings followed by *', () => {
    expect(scanTagKeyPatterns()).toEqual(caseVariants('scan-').map((v) => `${v}*`));
  });
});

describe('every statement is an unconditional-principal Deny on the objects of its bucket', () => {
  test.each([
    ['staging', true],
    ['staging', false],
    ['destination', true],
    ['destination', false],
    ['quarantine', true],
    ['quarantine', false],
  ] as const)('%s (created: %s)', (role, created) => {
    const statements = policy(role, { created });
    expect(statements.length).toBeGreaterThanOrEqual(4);
    expect(new Set(statements.map((s) => s.Sid)).size).toBe(statements.length);
    for (const s of statements) {
      expect(s).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' }, Resource: `${BUCKET}/*` });
      expect(asList((s.Condition?.ArnNotLike as Record<string, unknown> | undefined)?.['aws:PrincipalArn'])).toEqual(
        expect.arrayContaining([SM]),
      );
    }
  });

  test('destination and quarantine get the same statements whether created or imported', () => {
    for (const role of ['destination', 'quarantine'] as const) {
      expect(policy(role, { created: false })).toEqual(policy(role, { created: true }));
    }
  });
});

describe('verdict tags: only the state machine leaves a scan-* tag, in any letter case, on any pipeline bucket', () => {
  const roles = ['staging', 'destination', 'quarantine'] as const;

  test.each(roles)('%s: uploads and tagging requests naming scan-* in any case are denied', (role) => {
    const statements = policy(role);
    for (const key of ['scan-result', 'Scan-Result', 'SCAN-RESULT', 'sCaN-time', 'scan-']) {
      for (const action of ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging']) {
        expect(deniedBy(statements, { principal: ADMIN, action, requestTagKeys: ['team', key] })).toContain(
          'DenyScanTagWritesExceptPipeline',
        );
      }
    }
    expect(
      allowed(statements, { principal: SM, action: 's3:PutObjectVersionTagging', requestTagKeys: ['scan-result'] }),
    ).toBe(true);
  });

  test.each(roles)("%s: every server-side copy but the pipeline's is denied, whatever its tag header", (role) => {
    const statements = policy(role);
    const copy = { principal: ADMIN, action: 's3:PutObject', copySource: 'other-bucket/in/report.pdf' };
    expect(deniedBy(statements, copy)).toContain('DenyServerSideCopiesExceptPipeline');
    // TaggingDirective COPY with a harmless x-amz-tagging header would otherwise carry the source's tags.
    expect(deniedBy(statements, { ...copy, requestTagKeys: ['team'] })).toContain('DenyServerSideCopiesExceptPipeline');
    expect(deniedBy(statements, { ...copy, requestTagKeys: ['Scan-Result'] })).toContain(
      'DenyScanTagWritesExceptPipeline',
    );
    expect(allowed(statements, { ...copy, principal: SM })).toBe(true);
  });

  test('staging: a plain upload, with or without the owner’s own tags, is allowed', () => {
    const statements = policy('staging');
    expect(allowed(statements, { principal: ADMIN, action: 's3:PutObject', requestTagKeys: ['team'] })).toBe(true);
    expect(allowed(statements, { principal: ADMIN, action: 's3:PutObject' })).toBe(true);
    expect(
      allowed(statements, { principal: ADMIN, action: 's3:PutObject', requestTagKeys: ['scanner', 'x-scan-a'] }),
    ).toBe(true);
  });

  test.each(roles)('%s: the tags of an object with a verdict cannot be replaced or deleted', (role) => {
    const statements = policy(role);
    const verdict = { 'scan-result': 'Infected' };
    for (const action of [
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
      's3:DeleteObjectTagging',
      's3:DeleteObjectVersionTagging',
    ]) {
      expect(deniedBy(statements, { principal: ADMIN, action, existingTags: verdict })).toContain(
        'DenyVerdictTagRemovalExceptPipeline',
      );
    }
  });

  test.each(roles)('%s: replicated tags are refused (replication has no tag condition key)', (role) => {
    expect(deniedBy(policy(role), { principal: ADMIN, action: 's3:ReplicateTags' })).toContain(
      'DenyReplicatedTagsExceptPipeline',
    );
  });
});

describe('staging bucket the stack creates: fail-closed reads', () => {
  const statements = policy('staging', { stagingReaderRoleArns: [INVESTIGATOR] });

  test.each([['s3:GetObject'], ['s3:GetObjectVersion'], ['s3:GetObjectVersionForReplication']])(
    '%s is denied to an administrator and to anonymous requests, even on an object tagged Clean',
    (action) => {
      for (const principal of [ADMIN, undefined]) {
        expect(deniedBy(statements, { principal, action, existingTags: { 'scan-result': 'Clean' } })).toEqual([
          'DenyStagingReadsExceptPipeline',
        ]);
      }
    },
  );

  test('the three pipeline roles and the staging readers may read', () => {
    for (const principal of [SM, START_SCAN, WORKER, INVESTIGATOR]) {
      expect(allowed(statements, { principal, action: 's3:GetObjectVersion' })).toBe(true);
    }
  });

  test('tag reads stay open, so an uploader can poll the verdict', () => {
    expect(allowed(statements, { principal: ADMIN, action: 's3:GetObjectTagging' })).toBe(true);
  });

  test('blockUnscannedReads changes nothing on it', () => {
    expect(policy('staging', { blockUnscannedReads: false })).toEqual(policy('staging', { blockUnscannedReads: true }));
  });
});

describe('imported protected bucket: reads per blockUnscannedReads', () => {
  const blocked = policy('staging', { created: false, stagingReaderRoleArns: [INVESTIGATOR] });
  const open = policy('staging', { created: false, blockUnscannedReads: false });

  test('only objects tagged scan-result=Clean (exactly that key and value) are readable by others', () => {
    const read = (existingTags?: Record<string, string>) =>
      allowed(blocked, { principal: ADMIN, action: 's3:GetObject', ...(existingTags ? { existingTags } : {}) });
    expect(read({ 'scan-result': 'Clean' })).toBe(true);
    expect(read({ 'scan-result': 'Unscannable' })).toBe(false);
    expect(read({ 'Scan-Result': 'Clean' })).toBe(false);
    expect(read({ 'scan-result': 'clean' })).toBe(false);
    expect(read()).toBe(false);
  });

  test('the pipeline and the staging readers read anything', () => {
    for (const principal of [SM, START_SCAN, WORKER, INVESTIGATOR]) {
      expect(allowed(blocked, { principal, action: 's3:GetObject', existingTags: { 'scan-result': 'Error' } })).toBe(
        true,
      );
    }
  });

  test('with blockUnscannedReads false, reads are the owner’s business; the tag rules stay', () => {
    expect(allowed(open, { principal: ADMIN, action: 's3:GetObject' })).toBe(true);
    expect(deniedBy(open, { principal: ADMIN, action: 's3:PutObject', requestTagKeys: ['SCAN-result'] })).toEqual([
      'DenyScanTagWritesExceptPipeline',
    ]);
  });
});

describe('destination and quarantine: nobody but the state machine writes', () => {
  test.each(['destination', 'quarantine'] as const)(
    '%s: uploads, copies, tagging and replication are denied to everyone else; deletions are not',
    (role) => {
      const statements = policy(role, { quarantineReaderRoleArn: SECURITY, stagingReaderRoleArns: [INVESTIGATOR] });
      for (const principal of [ADMIN, WORKER, START_SCAN, SECURITY, INVESTIGATOR, undefined]) {
        for (const action of [
          's3:PutObject',
          's3:PutObjectTagging',
          's3:DeleteObjectTagging',
          's3:ReplicateObject',
          's3:ReplicateTags',
        ]) {
          expect(deniedBy(statements, { principal, action, requestTagKeys: ['team'] })).toContain(
            'DenyObjectWritesExceptPipeline',
          );
        }
        expect(allowed(statements, { principal, action: 's3:DeleteObjectVersion' })).toBe(true);
      }
      for (const action of ['s3:PutObject', 's3:PutObjectTagging']) {
        expect(allowed(statements, { principal: SM, action, copySource: 'staging/in/report.pdf' })).toBe(true);
      }
    },
  );

  test('destination objects are readable by anyone the owner allows, the worker included', () => {
    const statements = policy('destination');
    for (const principal of [ADMIN, WORKER]) {
      for (const action of ['s3:GetObject', 's3:GetObjectTagging']) {
        expect(allowed(statements, { principal, action })).toBe(true);
      }
    }
  });

  test('quarantined objects and their tags are readable by the state machine and the security role only', () => {
    const statements = policy('quarantine', { quarantineReaderRoleArn: SECURITY });
    for (const action of [
      's3:GetObject',
      's3:GetObjectVersion',
      's3:GetObjectTagging',
      's3:GetObjectVersionForReplication',
    ]) {
      for (const principal of [ADMIN, WORKER, START_SCAN, undefined]) {
        expect(deniedBy(statements, { principal, action })).toEqual(['DenyQuarantineReadsExceptPipelineAndSecurity']);
      }
      for (const principal of [SM, SECURITY]) expect(allowed(statements, { principal, action })).toBe(true);
    }
    expect(allowed(policy('quarantine'), { principal: SECURITY, action: 's3:GetObject' })).toBe(false);
  });
});
