import fc from 'fast-check';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import type { JsonValue } from './crypto/plaintext-codec.js';
import { DecryptionError, KeyNotFoundError } from './errors/encryption.errors.js';
import type { EncryptionAlgorithm } from './interfaces/encryption-module-options.interface.js';

const ALGORITHMS: EncryptionAlgorithm[] = ['AES-256-GCM', 'ChaCha20-Poly1305', 'AES-256-CBC-HMAC-SHA256'];
const RUNS = { numRuns: 150 };

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

/** Any JS string, including lone surrogates and unpaired halves (raw UTF-16 code units). */
const anyString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 200 }),
  // Long and repetitive, so it crosses the compression threshold and actually compresses.
  fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.integer({ min: 10, max: 200 })).map(([s, n]) => s.repeat(n)),
);

const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.integer({ min: 20, max: 200 })).map(([b, n]) =>
    new Uint8Array(Buffer.concat(Array.from({ length: n }, () => Buffer.from(b)))),
  ),
);

const plaintexts = fc.oneof(anyString, anyBytes.map((b) => Buffer.from(b)), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>);

/** JSON has no -0 (and fast-check's jsonValue can produce it): compare with what JSON itself gives back. */
const throughJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** What decrypting `value` must give: bytes and strings exactly, JSON values as JSON round trips them. */
const expectedOf = (value: unknown): unknown => (Buffer.isBuffer(value) || typeof value === 'string' ? value : throughJson(value));

/** The promise must reject with a DecryptionError (the generic one, or KeyNotFoundError) — never resolve, never anything else. */
async function expectRejected(promise: Promise<unknown>): Promise<void> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw new Error(`expected a DecryptionError, got ${String(error)}`);
    if (!(error instanceof KeyNotFoundError) && error.message !== 'Decryption failed') {
      throw new Error(`unexpected DecryptionError message: ${error.message}`);
    }
    return;
  }
  throw new Error(`decryption unexpectedly succeeded with ${JSON.stringify(value)?.slice(0, 100)}`);
}

describe.each(ALGORITHMS)('EncryptionService properties with %s', (algorithm) => {
  let app: EncryptionTestApp;

  beforeAll(async () => {
    // A low threshold so many generated values go through compression as well.
    app = await apps.create({ algorithm, compressionThreshold: 64 });
  });

  test('any string round trips, in binary and text form', async () => {
    await fc.assert(
      fc.asyncProperty(anyString, async (value) => {
        expect(await app.encryption.decrypt(await app.encryption.encrypt(value))).toBe(value);
        expect(await app.encryption.decrypt(await app.encryption.encryptToString(value))).toBe(value);
      }),
      RUNS,
    );
  });

  test('any Uint8Array round trips and comes back as a Buffer with the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(anyBytes, async (value) => {
        const decrypted = await app.encryption.decrypt(await app.encryption.encrypt(value));
        expect(Buffer.isBuffer(decrypted)).toBe(true);
        expect(Buffer.from(value).equals(decrypted as Buffer)).toBe(true);
      }),
      RUNS,
    );
  });

  test('any JSON value round trips (as JSON would give it back: no -0)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue() as fc.Arbitrary<JsonValue>, async (value) => {
        expect(await app.encryption.decrypt(await app.encryption.encrypt(value))).toEqual(throughJson(value));
        expect(await app.encryption.decrypt(await app.encryption.encryptToString(value))).toEqual(throughJson(value));
      }),
      RUNS,
    );
  });

  test('any single bit flip anywhere in the ciphertext is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, fc.nat(), async (value, position) => {
        const ciphertext = await app.encryption.encrypt(value);
        const bit = position % (ciphertext.length * 8);
        const tampered = Buffer.from(ciphertext);
        tampered[bit >> 3] ^= 1 << (bit & 7);
        await expectRejected(app.encryption.decrypt(tampered));
      }),
      { numRuns: 300 },
    );
  });

  test('any change of one character of the text form is rejected', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    await fc.assert(
      fc.asyncProperty(plaintexts, fc.nat(), fc.integer({ min: 1, max: 63 }), async (value, position, shift) => {
        const text = await app.encryption.encryptToString(value);
        const i = position % text.length;
        const replaced = alphabet[(alphabet.indexOf(text[i]) + shift) % 64];
        await expectRejected(app.encryption.decrypt(text.slice(0, i) + replaced + text.slice(i + 1)));
      }),
      RUNS,
    );
  });

  test('any truncation is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, fc.nat(), async (value, cut) => {
        const ciphertext = await app.encryption.encrypt(value);
        await expectRejected(app.encryption.decrypt(ciphertext.subarray(0, cut % ciphertext.length)));
      }),
      RUNS,
    );
  });

  test('any extension (appended or prepended bytes) is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.boolean(), async (value, extra, append) => {
        const ciphertext = await app.encryption.encrypt(value);
        const extended = append ? Buffer.concat([ciphertext, extra]) : Buffer.concat([extra, ciphertext]);
        await expectRejected(app.encryption.decrypt(extended));
      }),
      RUNS,
    );
  });

  test('a wrong or missing context is rejected; the right one, in any key order, decrypts', async () => {
    const context = fc.oneof(fc.string(), fc.dictionary(fc.string(), fc.string(), { maxKeys: 5 }));
    await fc.assert(
      fc.asyncProperty(plaintexts, context, context, async (value, right, wrong) => {
        fc.pre(JSON.stringify(right) !== JSON.stringify(wrong));
        const ciphertext = await app.encryption.encrypt(value, { context: right });
        const reordered = typeof right === 'string' ? right : Object.fromEntries(Object.entries(right).reverse());
        expect(await app.encryption.decrypt(ciphertext, { context: reordered })).toEqual(expectedOf(value));
        await expectRejected(app.encryption.decrypt(ciphertext));
        // Two objects with the same entries are the same context whatever their order, so compare canonically.
        const sameEntries =
          typeof right === 'object' &&
          typeof wrong === 'object' &&
          JSON.stringify(Object.entries(right).sort()) === JSON.stringify(Object.entries(wrong).sort());
        if (!sameEntries) await expectRejected(app.encryption.decrypt(ciphertext, { context: wrong }));
      }),
      RUNS,
    );
  });
});

describe('decrypting arbitrary input never throws anything but DecryptionError', () => {
  let app: EncryptionTestApp;
  let genuine: Buffer;

  beforeAll(async () => {
    app = await apps.create();
    genuine = await app.encryption.encrypt('a genuine ciphertext of this ring');
  });

  test('arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await expectRejected(app.encryption.decrypt(bytes));
        await expectRejected(app.encryption.decrypt(Buffer.from(bytes)));
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary strings, and base64url of arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64url'))),
        async (text) => {
          await expectRejected(app.encryption.decrypt(text));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a genuine header (known key id and commitment) with an arbitrary body and tag', async () => {
    const headerLength = 4 + genuine[3] + 32 + 12;
    const header = genuine.subarray(0, headerLength);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 16, maxLength: 200 }), fc.integer({ min: 0, max: 15 }), async (body, flags) => {
        const forged = Buffer.concat([header, body]);
        forged[2] = flags;
        await expectRejected(app.encryption.decrypt(forged));
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary ciphertexts under every other algorithm id with a known key id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1, 2, 3), fc.uint8Array({ minLength: 0, maxLength: 200 }), async (algorithm, rest) => {
        const keyIdEnd = 4 + genuine[3];
        const forged = Buffer.concat([Buffer.from([1, algorithm, 1]), genuine.subarray(3, keyIdEnd + 32), rest]);
        await expectRejected(app.encryption.decrypt(forged));
      }),
      { numRuns: 300 },
    );
  });
});
