import { hex, loadVectors } from '../../../../test/support/vectors.js';
import { deriveKeyFromPassword } from './password-key-derivation.js';

interface PbkdfTest {
  tcId: number;
  comment: string;
  flags: string[];
  /** Hex; some passwords are not valid UTF-8, so they are passed as bytes. */
  password: string;
  salt: string;
  iterationCount: number;
  /** Derived key length in bytes. */
  dkLen: number;
  dk: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

const vectors = loadVectors<{ numberOfTests: number; testGroups: { tests: PbkdfTest[] }[] }>(
  'wycheproof/pbkdf2_hmacsha256_test.json',
);
const tests = vectors.testGroups.flatMap((group) => group.tests);
const label = (t: PbkdfTest) =>
  `tcId ${t.tcId} (${t.iterationCount} iterations, ${t.dkLen}-byte key${t.flags.length ? `, ${t.flags.join(' ')}` : ''})`;

describe('deriveKeyFromPassword against Wycheproof PBKDF2-HMAC-SHA256', () => {
  test('every vector of the file is run; the largest iteration count is small enough to run in full', () => {
    expect(tests).toHaveLength(vectors.numberOfTests);
    expect(tests.every((t) => t.result === 'valid')).toBe(true);
    // Guards the runtime budget: if a bigger vector appears, this file needs a look.
    expect(Math.max(...tests.map((t) => t.iterationCount))).toBeLessThanOrEqual(80_000);
  });

  test.each(tests.map((t) => [label(t), t] as const))('%s: derives dk with the given salt', async (_label, t) => {
    const salt = hex(t.salt);
    const derived = await deriveKeyFromPassword(hex(t.password), salt, {
      iterations: t.iterationCount,
      keySize: t.dkLen,
      saltSize: 16,
    });
    expect(derived.key.toString('hex')).toBe(t.dk);
    expect(derived.salt).toBe(salt);
  });

  test('a string password is the same as its UTF-8 bytes', async () => {
    const valid = tests.find((t) => t.flags.includes('Utf8'))!;
    const password = hex(valid.password).toString('utf8');
    const derived = await deriveKeyFromPassword(password, hex(valid.salt), {
      iterations: valid.iterationCount,
      keySize: valid.dkLen,
      saltSize: 16,
    });
    expect(derived.key.toString('hex')).toBe(valid.dk);
  });

  test('without a salt, a random salt of saltSize bytes is made and returned', async () => {
    const options = { iterations: 1000, keySize: 32, saltSize: 24 };
    const a = await deriveKeyFromPassword('pw', undefined, options);
    const b = await deriveKeyFromPassword('pw', undefined, options);
    expect(a.salt).toHaveLength(24);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect((await deriveKeyFromPassword('pw', a.salt, options)).key).toEqual(a.key);
  });
});
