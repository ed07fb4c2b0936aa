import fc from 'fast-check';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { foreignFormatOf } from './crypto/ciphertext-format.js';
import { isCanonicalCompact } from './crypto/jwe.js';
import { DecryptionError, FormatDisabledError } from './errors/encryption.errors.js';

/**
 * `decrypt()` tells the native envelope, Fernet tokens and compact JWEs apart by their shape. Whatever
 * string or bytes it is given, it must only ever fail with a `DecryptionError` (or a subclass): never
 * a TypeError from a parser, never a config or input error for attacker-controlled data.
 */

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

let gcm: EncryptionTestApp;
let fernet: EncryptionTestApp;
let disabled: EncryptionTestApp;
let samples: { native: string; fernet: string; jwe: string };

beforeAll(async () => {
  gcm = await apps.create({ asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519', unknownKeyReloadIntervalMs: 60_000 });
  fernet = await apps.create({
    algorithm: 'fernet',
    asymmetricAlgorithm: 'ECDH-ES+A256KW-P256',
    unknownKeyReloadIntervalMs: 60_000,
  });
  disabled = await apps.create({ enableAsymmetric: false, unknownKeyReloadIntervalMs: 60_000 });
  samples = {
    native: await gcm.encryption.encryptToString({ a: 1 }),
    fernet: await fernet.encryption.encryptToString('a fernet payload'),
    jwe: await gcm.encryption.encryptForPublicKey({ a: 1 }),
  };
});

async function failsWithDecryptionError(app: EncryptionTestApp, input: string | Uint8Array): Promise<boolean> {
  try {
    await app.encryption.decrypt(input);
  } catch (error) {
    return error instanceof DecryptionError;
  }
  return false;
}

const BASE64URL = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'];

/** Strings close to each format: the alphabets, dots, padding, a leading `g` or `A`, and anything at all. */
const nearTokens = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom(...BASE64URL, '.', '='), maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 200 }).map((rest) => `g${rest}`),
  fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 200 }).map((rest) => `gAAAAA${rest}==`),
  fc
    .array(fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 60 }), { minLength: 2, maxLength: 7 })
    .map((parts) => parts.join('.')),
  fc
    .array(fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 60 }), { minLength: 5, maxLength: 5 })
    .map((parts) => `eyJ${parts.join('.')}`),
);

/** One character of a valid ciphertext replaced, removed or added. */
function mutationsOf(valid: () => string) {
  return fc
    .tuple(fc.nat(), fc.constantFrom(...BASE64URL, '.', '=', ' '), fc.constantFrom('replace', 'delete', 'insert'))
    .map(([at, char, how]) => {
      const text = valid();
      const i = at % text.length;
      if (how === 'delete') return text.slice(0, i) + text.slice(i + 1);
      if (how === 'insert') return text.slice(0, i) + char + text.slice(i);
      return text.slice(0, i) + (text[i] === char ? (char === 'A' ? 'B' : 'A') : char) + text.slice(i + 1);
    });
}

describe('decrypt() format detection', () => {
  test('what each format produces is detected as that format', async () => {
    expect(foreignFormatOf(samples.native)).toBeUndefined();
    expect(foreignFormatOf(await gcm.encryption.encrypt('x'))).toBeUndefined();
    expect(foreignFormatOf(samples.fernet)).toBe('fernet');
    expect(foreignFormatOf(await fernet.encryption.encrypt('x'))).toBe('fernet');
    expect(foreignFormatOf(samples.jwe)).toBe('jwe');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 300 }), fc.jsonValue()), async (value) => {
        expect(foreignFormatOf(await gcm.encryption.encryptToString(value as never))).toBeUndefined();
        expect(foreignFormatOf(await fernet.encryption.encryptToString(value as never))).toBe('fernet');
        expect(foreignFormatOf(await gcm.encryption.encryptForPublicKey(value as never))).toBe('jwe');
      }),
      { numRuns: 100 },
    );
  });

  test('arbitrary strings only ever raise DecryptionError', async () => {
    await fc.assert(
      fc.asyncProperty(nearTokens, async (input) => {
        expect(await failsWithDecryptionError(gcm, input)).toBe(true);
        expect(await failsWithDecryptionError(fernet, input)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary bytes only ever raise DecryptionError, whatever the first byte', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0x01, 0x80, 0x67, 0x41, 0x2e, 0x00, 0xff),
        fc.uint8Array({ maxLength: 300 }),
        async (first, rest) => {
          const input = Uint8Array.from([first, ...rest]);
          expect(await failsWithDecryptionError(gcm, input)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('one-character mutations of valid native, Fernet and JWE ciphertexts only ever raise DecryptionError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          mutationsOf(() => samples.native),
          mutationsOf(() => samples.fernet),
          mutationsOf(() => samples.jwe),
        ),
        async (input) => {
          // A mutation can leave a valid token (e.g. re-inserting the deleted character); anything else must fail generically.
          const valid = [samples.native, samples.fernet, samples.jwe].includes(input);
          const app = input === samples.fernet || input.startsWith('g') ? fernet : gcm;
          if (!valid) expect(await failsWithDecryptionError(app, input)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('with enableAsymmetric: false, only a well-formed compact JWE is a FormatDisabledError; everything else the generic DecryptionError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          nearTokens,
          mutationsOf(() => samples.jwe),
          fc.constant(samples.jwe),
        ),
        async (input) => {
          try {
            await disabled.encryption.decrypt(input);
          } catch (error) {
            expect(error).toBeInstanceOf(DecryptionError);
            expect(error instanceof FormatDisabledError).toBe(isCanonicalCompact(input));
            return;
          }
          throw new Error(`decrypted ${JSON.stringify(input)}`);
        },
      ),
      { numRuns: 200 },
    );
  });
});
