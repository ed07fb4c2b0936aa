import { jest } from '@jest/globals';
import type { JWK } from 'jose';

import { loadVectors } from '../../../../test/support/vectors.js';
import { DecryptionError, KeyNotFoundError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { JweContentEncryption, JweKeyResolver } from './jwe.js';
import { JWE_ALGORITHMS, JWE_CONTENT_ENCRYPTIONS, JWE_ENCRYPTION, jweDecrypt } from './jwe.js';

/**
 * Wycheproof's JSON Web Encryption vectors (json_web_encryption_schema_v1): groups hold a private
 * JWK, tests a compact (or JSON-serialized) `jwe`, the expected `pt` in hex when valid, and `result`.
 * Every case runs through `jweDecrypt`: the ones this layer supports must decrypt, everything else
 * must be rejected, including valid tokens for algorithms it deliberately refuses.
 */
interface JweTest {
  tcId: number;
  comment: string;
  jwe: string;
  pt?: string;
  result: 'valid' | 'invalid' | 'acceptable';
  flags: string[];
}
interface JweGroup {
  type: string;
  comment?: string;
  private: JWK;
  tests: JweTest[];
}
interface JweFile {
  schema: string;
  numberOfTests: number;
  testGroups: JweGroup[];
}

const file = loadVectors<JweFile>('wycheproof/json_web_encryption_test.json');

type Category = 'decrypts' | 'decrypts-when-enc-allowed' | 'unsupported-alg' | 'unsupported-zip' | 'unsupported-json' | 'invalid';

interface Case extends JweTest {
  key: JWK;
  alg?: string;
  enc?: string;
  category: Category;
  title: string;
}

function protectedHeader(jwe: string): Record<string, unknown> | undefined {
  const segments = jwe.split('.');
  if (segments.length !== 5) return undefined;
  try {
    return JSON.parse(Buffer.from(segments[0], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function classify(test: JweTest, key: JWK): Case {
  const header = protectedHeader(test.jwe);
  const alg = typeof header?.alg === 'string' ? header.alg : undefined;
  const enc = typeof header?.enc === 'string' ? header.enc : undefined;
  const base = { ...test, key, alg, enc };
  const id = `tcId ${test.tcId} ${test.comment}`;
  if (test.result !== 'valid') {
    return { ...base, category: 'invalid', title: `${id}: invalid (${alg ?? 'no alg'}/${enc ?? 'no enc'}), rejected` };
  }
  if (test.jwe.trimStart().startsWith('{')) {
    return { ...base, category: 'unsupported-json', title: `${id}: deliberately unsupported JSON serialization, rejected` };
  }
  if (header?.zip !== undefined) {
    return { ...base, category: 'unsupported-zip', title: `${id}: deliberately unsupported zip "${String(header.zip)}", rejected` };
  }
  if (!(JWE_ALGORITHMS as readonly unknown[]).includes(alg)) {
    return { ...base, category: 'unsupported-alg', title: `${id}: deliberately unsupported alg ${alg}, rejected` };
  }
  if (enc === JWE_ENCRYPTION) return { ...base, category: 'decrypts', title: `${id}: ${alg}/${enc} decrypts to pt` };
  return {
    ...base,
    category: 'decrypts-when-enc-allowed',
    title: `${id}: ${alg}/${enc} rejected by default (enc not allowed), decrypts to pt when ${enc} is allowed`,
  };
}

const cases = file.testGroups.flatMap((group) => group.tests.map((test) => classify(test, group.private)));
const ofCategory = (...categories: Category[]) => cases.filter((c) => categories.includes(c.category));
const ALL_ENCRYPTIONS = { contentEncryptionAlgorithms: JWE_CONTENT_ENCRYPTIONS };

/** The group's key for whatever kid the token names (most vectors set none). */
const resolverFor = (key: JWK) => jest.fn<JweKeyResolver>(() => key);

async function expectGenericFailure(attempt: Promise<unknown>): Promise<void> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DecryptionError);
  expect(error).not.toBeInstanceOf(KeyNotFoundError);
  expect(error).toMatchObject({ message: MESSAGES.DECRYPTION_FAILED, code: 'DECRYPTION_FAILED' });
}

describe('Wycheproof JSON Web Encryption vectors through jweDecrypt', () => {
  it('reads every test of the file and finds the supported ones', () => {
    expect(file.schema).toBe('json_web_encryption_schema_v1.json');
    expect(cases).toHaveLength(file.numberOfTests);
    expect(cases.filter((c) => c.result === 'acceptable')).toHaveLength(0);
    // RSA-OAEP-256 and ECDH-ES+A256KW (P-256) with A256GCM: tcId 66 and 90.
    expect(ofCategory('decrypts').map((c) => c.tcId)).toEqual([66, 90]);
    expect(ofCategory('decrypts-when-enc-allowed').length).toBeGreaterThanOrEqual(8);
  });

  test.each(ofCategory('decrypts'))('$title', async (c) => {
    const resolver = resolverFor(c.key);
    expect((await jweDecrypt(c.jwe, resolver)).toString('hex')).toBe(c.pt);
    expect(resolver).toHaveBeenCalledWith(undefined, c.alg);
  });

  test.each(ofCategory('decrypts-when-enc-allowed'))('$title', async (c) => {
    const resolver = resolverFor(c.key);
    await expectGenericFailure(jweDecrypt(c.jwe, resolver));
    expect(resolver).not.toHaveBeenCalled();
    const options = { contentEncryptionAlgorithms: [JWE_ENCRYPTION, c.enc as JweContentEncryption] };
    expect((await jweDecrypt(c.jwe, resolver, options)).toString('hex')).toBe(c.pt);
  });

  test.each(ofCategory('unsupported-alg', 'unsupported-zip', 'unsupported-json'))('$title', async (c) => {
    const resolver = resolverFor(c.key);
    await expectGenericFailure(jweDecrypt(c.jwe, resolver, ALL_ENCRYPTIONS));
    expect(resolver).not.toHaveBeenCalled();
  });

  // Invalid cases are tried with every content encryption allowed, so they reach the cryptography.
  test.each(ofCategory('invalid'))('$title', async (c) => {
    await expectGenericFailure(jweDecrypt(c.jwe, resolverFor(c.key), ALL_ENCRYPTIONS));
    await expectGenericFailure(jweDecrypt(c.jwe, resolverFor(c.key)));
  });
});
