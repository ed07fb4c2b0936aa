import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { createEncryptionTestApp, encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { AES_256_CBC_HMAC_SHA256, AES_256_GCM, CHACHA20_POLY1305 } from './crypto/aead.js';
import type { Envelope } from './crypto/envelope.js';
import { CompressionCodec, parseEnvelope, PayloadType } from './crypto/envelope.js';
import { unwrapKey } from './crypto/key-wrap.js';
import type { Plaintext } from './crypto/plaintext-codec.js';
import {
  DecompressionLimitError,
  DecryptionError,
  EncryptionError,
  EncryptionInputError,
  KeyNotFoundError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { EncryptionAlgorithm } from './interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

function envelopeOf(ciphertext: Buffer | string): Envelope {
  const bytes = typeof ciphertext === 'string' ? Buffer.from(ciphertext, 'base64url') : ciphertext;
  const envelope = parseEnvelope(bytes);
  if (!envelope) throw new Error('not an envelope');
  return envelope;
}

/** Resolves to the error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Asserts the one generic authentication failure: exactly `DecryptionError`, exactly its message. */
async function expectGenericDecryptionFailure(promise: Promise<unknown>): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error.constructor).toBe(DecryptionError);
  expect(error.message).toBe('Decryption failed');
  expect((error as DecryptionError).code).toBe('DECRYPTION_FAILED');
}

function flipBit(bytes: Buffer, index: number, bit = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 1 << bit;
  return copy;
}

/** Random bytes: no compressor can shrink them. */
const incompressible = (size: number): Buffer => randomBytes(size);

describe('EncryptionService', () => {
  let app: EncryptionTestApp;

  beforeAll(async () => {
    app = await apps.create();
  });

  describe('round trips restore the type that went in', () => {
    const strings: [string, string][] = [
      ['empty string', ''],
      ['ASCII', 'hello world'],
      ['unicode (accents, CJK, emoji, ZWJ sequence)', 'héllo wörld · 日本語 · 🔐 · 👩‍💻'],
      ['lone high surrogate', '\uD800'],
      ['lone low surrogate inside text', 'a\uDC00b'],
      ['reversed surrogate pair', '\uDC00\uD800'],
      ['text that looks like JSON', '{"a":1}'],
      ['text that looks like a number', '42'],
      ['NUL bytes', '\u0000x\u0000'],
    ];

    test.each(strings)('string: %s (binary and text forms)', async (_name, value) => {
      const binary = await app.encryption.encrypt(value);
      const text = await app.encryption.encryptToString(value);
      expect(Buffer.isBuffer(binary)).toBe(true);
      expect(await app.encryption.decrypt(binary)).toBe(value);
      expect(await app.encryption.decrypt(text)).toBe(value);
    });

    test('a string is never decrypted as JSON or bytes', async () => {
      expect(await app.encryption.decrypt(await app.encryption.encrypt('42'))).toStrictEqual('42');
      expect(await app.encryption.decrypt(await app.encryption.encrypt('null'))).toStrictEqual('null');
      expect(await app.encryption.decrypt(await app.encryption.encrypt('true'))).toStrictEqual('true');
    });

    test('lone surrogates survive exactly, code unit for code unit', async () => {
      const value = 'x\uD83Dy\uDE00z\uD83D';
      const decrypted = await app.encryption.decrypt<string>(await app.encryption.encrypt(value));
      expect([...decrypted].map((c) => c.charCodeAt(0))).toEqual([...value].map((c) => c.charCodeAt(0)));
    });

    const bytes: [string, Buffer | Uint8Array, Buffer][] = [
      ['empty Buffer', Buffer.alloc(0), Buffer.alloc(0)],
      ['Buffer', Buffer.from([0, 1, 2, 254, 255]), Buffer.from([0, 1, 2, 254, 255])],
      ['Uint8Array', new Uint8Array([9, 8, 7]), Buffer.from([9, 8, 7])],
      ['Uint8Array view into a larger buffer', new Uint8Array([1, 2, 3, 4, 5, 6]).subarray(2, 4), Buffer.from([3, 4])],
      ['Buffer that is valid UTF-8 text', Buffer.from('text'), Buffer.from('text')],
    ];

    test.each(bytes)('%s comes back as a Buffer (binary and text forms)', async (_name, value, expected) => {
      for (const ciphertext of [await app.encryption.encrypt(value), await app.encryption.encryptToString(value)]) {
        const decrypted = await app.encryption.decrypt(ciphertext);
        expect(Buffer.isBuffer(decrypted)).toBe(true);
        expect(decrypted).toEqual(expected);
      }
    });

    const json: [string, Plaintext][] = [
      ['object', { a: 1, b: 'two', c: true }],
      ['array', [1, 'two', false, null]],
      ['empty object', {}],
      ['empty array', []],
      ['integer', 42],
      ['negative float', -1.5],
      ['zero', 0],
      ['large number', Number.MAX_SAFE_INTEGER],
      ['true', true],
      ['false', false],
      ['null', null],
      ['nested', { user: { name: 'Ada', tags: ['a', 'b'], address: { city: 'London', zip: null } }, list: [[1], [{ x: [] }]] }],
      ['object with unicode keys and lone surrogates', { 'ключ 🔑': 'значение', s: '\uD800' }],
    ];

    test.each(json)('JSON %s (binary and text forms)', async (_name, value) => {
      for (const ciphertext of [await app.encryption.encrypt(value), await app.encryption.encryptToString(value)]) {
        expect(await app.encryption.decrypt(ciphertext)).toStrictEqual(value);
      }
    });

    test('the envelope records the payload type', async () => {
      expect(envelopeOf(await app.encryption.encrypt('s')).payloadType).toBe(PayloadType.String);
      expect(envelopeOf(await app.encryption.encrypt(Buffer.from('s'))).payloadType).toBe(PayloadType.Bytes);
      expect(envelopeOf(await app.encryption.encrypt({ s: 1 })).payloadType).toBe(PayloadType.Json);
    });

    test('the text form is unpadded base64url of the binary envelope', async () => {
      const text = await app.encryption.encryptToString({ hello: 'world' });
      expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
      const binary = Buffer.from(text, 'base64url');
      expect(binary.toString('base64url')).toBe(text);
      expect(await app.encryption.decrypt(binary)).toEqual({ hello: 'world' });
    });

    test('decrypt accepts the binary form as a plain Uint8Array too', async () => {
      const binary = await app.encryption.encrypt('via Uint8Array');
      const copy = new Uint8Array(binary.length + 3).subarray(3);
      copy.set(binary);
      expect(await app.encryption.decrypt(copy)).toBe('via Uint8Array');
    });

    test('encryption is randomised: the same plaintext never gives the same ciphertext', async () => {
      const a = await app.encryption.encrypt('same');
      const b = await app.encryption.encrypt('same');
      expect(a.equals(b)).toBe(false);
      expect(envelopeOf(a).nonce.equals(envelopeOf(b).nonce)).toBe(false);
    });

    test('the input value is not modified', async () => {
      const buffer = Buffer.from('unchanged');
      const object = { a: [1, 2], b: 'c' };
      await app.encryption.encrypt(buffer);
      await app.encryption.encrypt(object, { compress: true });
      expect(buffer.toString()).toBe('unchanged');
      expect(object).toEqual({ a: [1, 2], b: 'c' });
    });

    test('round trips also work with an event subscriber attached (the observed code path)', async () => {
      const events: string[] = [];
      const unsubscribe = app.events.subscribe((event) => {
        if (event.type === 'operation') events.push(`${event.operation}:${event.result}`);
      });
      try {
        expect(await app.encryption.decrypt(await app.encryption.encryptToString({ n: 1 }))).toEqual({ n: 1 });
        await expectGenericDecryptionFailure(app.encryption.decrypt(Buffer.from('garbage')));
      } finally {
        unsubscribe();
      }
      expect(events).toEqual(['encrypt:success', 'decrypt:success', 'decrypt:failure']);
    });
  });

  describe('algorithms', () => {
    const algorithms: [EncryptionAlgorithm, number][] = [
      ['AES-256-GCM', AES_256_GCM.id],
      ['ChaCha20-Poly1305', CHACHA20_POLY1305.id],
      ['AES-256-CBC-HMAC-SHA256', AES_256_CBC_HMAC_SHA256.id],
    ];

    test('AES-256-GCM is the default', async () => {
      expect(app.options.algorithm).toBe('AES-256-GCM');
      expect(envelopeOf(await app.encryption.encrypt('x')).cipher).toBe(AES_256_GCM);
    });

    test.each(algorithms)('%s round trips every payload type and is recorded in the envelope', async (algorithm, id) => {
      const { encryption } = await apps.create({ algorithm });
      const payloads: Plaintext[] = ['', 'text 🔐', Buffer.from([0, 255]), { a: [1, null] }, 'x'.repeat(5000)];
      for (const payload of payloads) {
        const ciphertext = await encryption.encrypt(payload);
        expect(ciphertext[1]).toBe(id);
        expect(await encryption.decrypt(ciphertext)).toEqual(payload);
        expect(await encryption.decrypt(await encryption.encryptToString(payload))).toEqual(payload);
      }
    });

    test('ciphertexts made under each algorithm decrypt in services configured with every other algorithm', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const services = [];
      for (const [algorithm] of algorithms) {
        services.push({ algorithm, app: await apps.create({ algorithm, keyStore, masterKey }) });
      }
      // They share one ring: the first app created it, the others loaded it.
      const activeIds = new Set(services.map(({ app }) => app.keys.activeKey.id));
      expect(activeIds.size).toBe(1);

      for (const from of services) {
        const payload = { madeWith: from.algorithm, body: 'z'.repeat(2000) };
        const ciphertext = await from.app.encryption.encrypt(payload);
        expect(envelopeOf(ciphertext).cipher.name).toBe(from.algorithm);
        for (const to of services) {
          expect(await to.app.encryption.decrypt(ciphertext)).toEqual(payload);
        }
      }
    });
  });

  describe('explicit keys', () => {
    test('encrypts and decrypts with a caller-supplied key, recorded under a non-secret x- key id', async () => {
      const key = randomBytes(32);
      const ciphertext = await app.encryption.encrypt('with my key', { key });
      const { keyId } = envelopeOf(ciphertext);
      expect(keyId).toMatch(/^x-[0-9a-f]{16}$/);
      expect(keyId).not.toContain(key.toString('hex').slice(0, 16));
      expect(await app.encryption.decrypt(ciphertext, { key })).toBe('with my key');
      expect(await app.encryption.decrypt(ciphertext.toString('base64url'), { key })).toBe('with my key');
    });

    test('a key longer than keySize is accepted', async () => {
      const key = randomBytes(64);
      expect(await app.encryption.decrypt(await app.encryption.encrypt({ ok: true }, { key }), { key })).toEqual({ ok: true });
    });

    test('a ciphertext made with an explicit key needs that key: without it the key id is unknown', async () => {
      const ciphertext = await app.encryption.encrypt('secret', { key: randomBytes(32) });
      await expect(app.encryption.decrypt(ciphertext)).rejects.toBeInstanceOf(KeyNotFoundError);
      await expect(app.encryption.decrypt(ciphertext, { key: randomBytes(32) })).rejects.toBeInstanceOf(KeyNotFoundError);
    });

    test('a wrong explicit key falls back to the ring by the ciphertext key id', async () => {
      const ciphertext = await app.encryption.encrypt('ring-encrypted');
      expect(await app.encryption.decrypt(ciphertext, { key: randomBytes(32) })).toBe('ring-encrypted');
    });

    test('the same explicit key in another service instance decrypts (the key id is derived from the key)', async () => {
      const key = randomBytes(32);
      const other = await apps.create();
      const ciphertext = await app.encryption.encrypt('portable', { key });
      expect(await other.encryption.decrypt(ciphertext, { key })).toBe('portable');
    });

    test.each([
      ['31 bytes', Buffer.alloc(31, 1)],
      ['empty', Buffer.alloc(0)],
    ])('a key shorter than keySize (%s) is an EncryptionInputError on encrypt and decrypt', async (_name, key) => {
      const message = MESSAGES.INVALID_EXPLICIT_KEY(32);
      await expect(app.encryption.encrypt('x', { key })).rejects.toThrow(new EncryptionInputError(message));
      await expect(app.encryption.encrypt('x', { key })).rejects.toBeInstanceOf(EncryptionInputError);
      const ciphertext = await app.encryption.encrypt('x');
      await expect(app.encryption.decrypt(ciphertext, { key })).rejects.toBeInstanceOf(EncryptionInputError);
    });

    test('a key that is not a Buffer is an EncryptionInputError', async () => {
      const key = 'a'.repeat(64) as unknown as Buffer;
      const error = await rejectionOf(app.encryption.encrypt('x', { key }));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.INVALID_EXPLICIT_KEY(32));
    });
  });

  describe('compression', () => {
    const compressible = (size: number): string => 'abcdefgh'.repeat(Math.ceil(size / 8)).slice(0, size);
    let overhead: number;

    beforeAll(async () => {
      // Header + tag of a GCM envelope; the ciphertext of an uncompressed payload is as long as the payload.
      overhead = (await app.encryption.encrypt('')).length;
    });

    test('is on by default with a 1024-byte threshold', () => {
      expect(app.options.enableCompression).toBe(true);
      expect(app.options.compressionThreshold).toBe(1024);
    });

    test('a payload below the threshold is stored uncompressed, however compressible', async () => {
      const ciphertext = await app.encryption.encrypt(compressible(1023));
      expect(ciphertext.length).toBe(overhead + 1023);
      expect(envelopeOf(ciphertext).codec).toBe(CompressionCodec.None);
    });

    test('a compressible payload at or above the threshold is compressed', async () => {
      for (const size of [1024, 10_000]) {
        const value = compressible(size);
        const ciphertext = await app.encryption.encrypt(value);
        expect(envelopeOf(ciphertext).codec).toBe(CompressionCodec.Gzip);
        expect(ciphertext.length).toBeLessThan(overhead + size / 4);
        expect(await app.encryption.decrypt(ciphertext)).toBe(value);
      }
    });

    test('incompressible data is stored uncompressed (compression only when smaller)', async () => {
      const value = incompressible(4096);
      const ciphertext = await app.encryption.encrypt(value);
      expect(envelopeOf(ciphertext).codec).toBe(CompressionCodec.None);
      expect(ciphertext.length).toBe(overhead + 4096);
      expect(await app.encryption.decrypt(ciphertext)).toEqual(value);
    });

    test('compress: false overrides enableCompression for one call', async () => {
      const ciphertext = await app.encryption.encrypt(compressible(5000), { compress: false });
      expect(envelopeOf(ciphertext).codec).toBe(CompressionCodec.None);
      expect(ciphertext.length).toBe(overhead + 5000);
    });

    test('enableCompression: false stores everything uncompressed; compress: true overrides it, threshold still applies', async () => {
      const { encryption } = await apps.create({ enableCompression: false });
      const large = compressible(50_000);
      const plain = await encryption.encrypt(large);
      expect(envelopeOf(plain).codec).toBe(CompressionCodec.None);
      expect(plain.length).toBe(overhead + 50_000);
      expect(await encryption.decrypt(plain)).toBe(large);

      const forced = await encryption.encrypt(large, { compress: true });
      expect(envelopeOf(forced).codec).toBe(CompressionCodec.Gzip);
      expect(forced.length).toBeLessThan(overhead + 1000);
      expect(await encryption.decrypt(forced)).toBe(large);

      const small = await encryption.encrypt(compressible(100), { compress: true });
      expect(envelopeOf(small).codec).toBe(CompressionCodec.None);
    });

    test('compressionThreshold is configurable', async () => {
      const { encryption } = await apps.create({ compressionThreshold: 100 });
      expect(envelopeOf(await encryption.encrypt(compressible(99))).codec).toBe(CompressionCodec.None);
      expect(envelopeOf(await encryption.encrypt(compressible(100))).codec).toBe(CompressionCodec.Gzip);
    });

    test.each([
      ['gzip', CompressionCodec.Gzip, gunzipSync],
      ['brotli', CompressionCodec.Brotli, brotliDecompressSync],
    ] as const)('%s: compresses, round trips, and decompress: false returns the still-compressed Buffer', async (algorithm, codec, inflate) => {
      const { encryption } = await apps.create({ compressionAlgorithm: algorithm });
      const value = { text: compressible(20_000) };
      const ciphertext = await encryption.encrypt(value);
      expect(envelopeOf(ciphertext).codec).toBe(codec);
      expect(await encryption.decrypt(ciphertext)).toEqual(value);

      const raw = await encryption.decrypt(ciphertext, { decompress: false });
      expect(Buffer.isBuffer(raw)).toBe(true);
      expect((raw as Buffer).length).toBeLessThan(2000);
      expect(JSON.parse(inflate(raw as Buffer).toString('utf8'))).toEqual(value);
    });

    test.each(['gzip', 'brotli'] as const)('%s: large payloads (thread-pool path) round trip', async (algorithm) => {
      const { encryption } = await apps.create({ compressionAlgorithm: algorithm });
      // Hex is compressible but not trivially, so the compressed form is also large.
      const value = randomBytes(150_000).toString('hex');
      const ciphertext = await encryption.encrypt(value);
      expect(envelopeOf(ciphertext).codec).not.toBe(CompressionCodec.None);
      expect(ciphertext.length).toBeLessThan(value.length);
      expect(await encryption.decrypt(ciphertext)).toBe(value);
    });

    test('decompress: false on an uncompressed ciphertext still returns the typed value', async () => {
      expect(await app.encryption.decrypt(await app.encryption.encrypt({ a: 1 }), { decompress: false })).toEqual({ a: 1 });
    });

    test.each([
      ['gzip', 10_000],
      ['gzip', 300_000],
      ['brotli', 10_000],
      ['brotli', 300_000],
    ] as const)('%s: a payload that would decompress beyond maxDecompressedSize is a DecompressionLimitError (%i bytes)', async (algorithm, size) => {
      const limit = 5000;
      const store = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const writer = await apps.create({ compressionAlgorithm: algorithm, keyStore: store, masterKey });
      const reader = await apps.create({ compressionAlgorithm: algorithm, keyStore: store, masterKey, maxDecompressedSize: limit });
      const value = size > 100_000 ? randomBytes(size / 2).toString('hex') : compressible(size);
      const ciphertext = await writer.encryption.encrypt(value);

      const error = await rejectionOf(reader.encryption.decrypt(ciphertext));
      expect(error).toBeInstanceOf(DecompressionLimitError);
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toBe(MESSAGES.DECOMPRESSION_LIMIT(limit));
      expect((error as DecompressionLimitError).limit).toBe(limit);
      expect((error as DecompressionLimitError).code).toBe('DECOMPRESSION_LIMIT');
      // At exactly the limit it still works.
      const exact = await apps.create({ keyStore: store, masterKey, maxDecompressedSize: size });
      expect(await exact.encryption.decrypt(ciphertext)).toBe(value);
    });
  });

  describe('context binding', () => {
    test.each([
      ['string', 'tenant-42'],
      ['Buffer', Buffer.from([0, 1, 2, 3])],
      ['Uint8Array', new Uint8Array([4, 5, 6])],
      ['object', { tenant: '42', table: 'users', column: 'email' }],
      ['empty string', ''],
      ['empty object', {}],
    ])('a %s context is required to decrypt', async (_name, context) => {
      const ciphertext = await app.encryption.encrypt('bound', { context });
      expect(await app.encryption.decrypt(ciphertext, { context })).toBe('bound');
      await expectGenericDecryptionFailure(app.encryption.decrypt(ciphertext));
      await expectGenericDecryptionFailure(app.encryption.decrypt(ciphertext, { context: 'something else' }));
    });

    test('an object context is canonical: key order does not matter', async () => {
      const ciphertext = await app.encryption.encrypt('bound', { context: { b: '2', a: '1', c: '3' } });
      expect(await app.encryption.decrypt(ciphertext, { context: { a: '1', b: '2', c: '3' } })).toBe('bound');
      expect(await app.encryption.decrypt(ciphertext, { context: { c: '3', a: '1', b: '2' } })).toBe('bound');
    });

    test('a string context and its UTF-8 bytes are the same binding', async () => {
      const ciphertext = await app.encryption.encrypt('bound', { context: 'ctx é' });
      expect(await app.encryption.decrypt(ciphertext, { context: Buffer.from('ctx é', 'utf8') })).toBe('bound');
    });

    test.each([
      ['a changed value', { tenant: '42', table: 'users' }, { tenant: '43', table: 'users' }],
      ['a missing key', { tenant: '42', table: 'users' }, { tenant: '42' }],
      ['an extra key', { tenant: '42' }, { tenant: '42', table: 'users' }],
      ['swapped key and value', { a: 'b' }, { b: 'a' }],
      ['an object vs the string of its canonical form', { a: 'b' }, '[["a","b"]]'],
      ['an empty string vs no context', '', undefined],
      ['an empty object vs an empty string', {}, ''],
      ['one differing byte', Buffer.from([1, 2, 3]), Buffer.from([1, 2, 4])],
    ])('a wrong context is rejected with the generic message: %s', async (_name, encryptContext, decryptContext) => {
      const ciphertext = await app.encryption.encrypt('bound', { context: encryptContext });
      await expectGenericDecryptionFailure(app.encryption.decrypt(ciphertext, { context: decryptContext }));
    });

    test('a context given only at decryption is rejected', async () => {
      const ciphertext = await app.encryption.encrypt('unbound');
      await expectGenericDecryptionFailure(app.encryption.decrypt(ciphertext, { context: 'extra' }));
    });

    test.each([
      ['number', 42],
      ['null', null],
      ['object with a non-string value', { id: 42 }],
      ['nested object', { a: { b: 'c' } }],
    ])('an invalid context (%s) is an EncryptionInputError', async (_name, context) => {
      const error = await rejectionOf(app.encryption.encrypt('x', { context: context as never }));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.INVALID_CONTEXT);
    });

    test('context works with every algorithm and with compression', async () => {
      for (const algorithm of ['ChaCha20-Poly1305', 'AES-256-CBC-HMAC-SHA256'] as const) {
        const { encryption } = await apps.create({ algorithm });
        const value = 'q'.repeat(4000);
        const ciphertext = await encryption.encrypt(value, { context: { row: '1' } });
        expect(envelopeOf(ciphertext).codec).toBe(CompressionCodec.Gzip);
        expect(await encryption.decrypt(ciphertext, { context: { row: '1' } })).toBe(value);
        await expectGenericDecryptionFailure(encryption.decrypt(ciphertext, { context: { row: '2' } }));
      }
    });
  });

  describe('errors', () => {
    test.each([
      ['undefined', undefined, MESSAGES.UNSUPPORTED_PLAINTEXT('undefined')],
      ['a function', () => 1, MESSAGES.UNSUPPORTED_PLAINTEXT('function')],
      ['a symbol', Symbol('s'), MESSAGES.UNSUPPORTED_PLAINTEXT('symbol')],
      ['a bigint', 10n, MESSAGES.UNSUPPORTED_PLAINTEXT('bigint')],
      ['a bigint inside an object', { amount: 10n }, MESSAGES.UNSUPPORTED_PLAINTEXT('bigint')],
      ['a function inside an array', [1, () => 1], MESSAGES.UNSUPPORTED_PLAINTEXT('function')],
      ['undefined inside an array', [1, undefined], MESSAGES.UNSUPPORTED_PLAINTEXT('undefined')],
      ['NaN', NaN, MESSAGES.NON_FINITE_NUMBER],
      ['NaN inside an object', { total: NaN, note: null }, MESSAGES.NON_FINITE_NUMBER],
      ['Infinity deep inside arrays and objects', { rows: [[1, { x: Infinity }]] }, MESSAGES.NON_FINITE_NUMBER],
      ['Infinity', Infinity, MESSAGES.NON_FINITE_NUMBER],
      ['-Infinity', -Infinity, MESSAGES.NON_FINITE_NUMBER],
    ])('encrypting %s is an EncryptionInputError with the exact message', async (_name, value, message) => {
      for (const run of [() => app.encryption.encrypt(value as Plaintext), () => app.encryption.encryptToString(value as Plaintext)]) {
        const error = await rejectionOf(run());
        expect(error).toBeInstanceOf(EncryptionInputError);
        expect(error).toBeInstanceOf(EncryptionError);
        expect(error.message).toBe(message);
        expect((error as EncryptionInputError).code).toBe('INVALID_INPUT');
      }
    });

    test('JSON nulls, Dates and nested Buffers still encrypt as JSON would write them', async () => {
      const value = { a: null, b: [null, 1], when: new Date(0), bytes: Buffer.from('hi') };
      expect(await app.encryption.decrypt(await app.encryption.encrypt(value as unknown as Plaintext))).toEqual(
        JSON.parse(JSON.stringify(value)),
      );
    });

    test('a circular object is an EncryptionInputError, not a raw TypeError', async () => {
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      await expect(app.encryption.encrypt(circular as Plaintext)).rejects.toBeInstanceOf(EncryptionInputError);
    });

    test('an unknown key id is a KeyNotFoundError, which is a DecryptionError', async () => {
      const other = await apps.create();
      const ciphertext = await other.encryption.encrypt('from another ring');
      const error = await rejectionOf(app.encryption.decrypt(ciphertext));
      expect(error).toBeInstanceOf(KeyNotFoundError);
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toBe(MESSAGES.KEY_NOT_FOUND);
      expect((error as KeyNotFoundError).code).toBe('KEY_NOT_FOUND');
      expect((error as KeyNotFoundError).keyId).toBe(other.keys.activeKey.id);
    });

    describe('every authentication failure is the same DecryptionError("Decryption failed")', () => {
      let ciphertext: Buffer;
      let envelope: Envelope;
      beforeAll(async () => {
        ciphertext = await app.encryption.encrypt('the payload of the tamper tests');
        envelope = envelopeOf(ciphertext);
      });
      const keyIdStart = 4;
      const commitmentStart = () => keyIdStart + envelope.keyId.length;
      const nonceStart = () => commitmentStart() + 32;
      const bodyStart = () => nonceStart() + 12;

      const tampered: [string, () => Buffer | Uint8Array | string][] = [
        ['a flipped tag bit', () => flipBit(ciphertext, ciphertext.length - 1, 7)],
        ['a flipped first tag bit', () => flipBit(ciphertext, ciphertext.length - 16)],
        ['a flipped ciphertext bit', () => flipBit(ciphertext, bodyStart(), 3)],
        ['a flipped nonce bit', () => flipBit(ciphertext, nonceStart())],
        ['a flipped commitment bit', () => flipBit(ciphertext, commitmentStart() + 5)],
        ['a changed payload type', () => flipBit(ciphertext, 2, 0)],
        ['a changed compression codec', () => flipBit(ciphertext, 2, 2)],
        ['a reserved flag bit set', () => flipBit(ciphertext, 2, 7)],
        ['an unknown format version', () => Buffer.concat([Buffer.from([2]), ciphertext.subarray(1)])],
        ['an unknown algorithm id', () => Buffer.concat([Buffer.from([1, 9]), ciphertext.subarray(2)])],
        ['the algorithm relabelled as ChaCha20-Poly1305 (same sizes)', () => Buffer.concat([Buffer.from([1, 2]), ciphertext.subarray(2)])],
        ['a zero key id length', () => Buffer.concat([ciphertext.subarray(0, 3), Buffer.from([0]), ciphertext.subarray(4)])],
        ['truncation by one byte', () => ciphertext.subarray(0, ciphertext.length - 1)],
        ['truncation to the header', () => ciphertext.subarray(0, bodyStart())],
        ['one appended byte', () => Buffer.concat([ciphertext, Buffer.from([0])])],
        ['an empty buffer', () => Buffer.alloc(0)],
        ['random bytes', () => randomBytes(200)],
        ['an empty string', () => ''],
        ['text with characters outside base64url', () => ciphertext.toString('base64')+ '+/='],
        ['base64url of impossible length', () => 'AAAAA'],
        ['an arbitrary string', () => 'not a ciphertext at all'],
        ['the text form with a changed character', () => {
          const text = ciphertext.toString('base64url');
          const i = text.length - 10;
          return text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
        }],
      ];

      test.each(tampered)('%s', async (_name, make) => {
        await expectGenericDecryptionFailure(app.encryption.decrypt(make()));
      });

      test.each([
        ['null', null],
        ['a number', 42],
        ['an object', { ciphertext: 'x' }],
        ['an array of numbers', [1, 2, 3]],
      ])('decrypting %s is a DecryptionError too', async (_name, input) => {
        await expectGenericDecryptionFailure(app.encryption.decrypt(input as never));
      });

      test('the text form accepts only the canonical encoding of each envelope', async () => {
        // Pick a payload whose envelope length leaves unused bits in the last base64url character.
        let payload = 'c';
        while ((await app.encryption.encrypt(payload)).length % 3 === 0) payload += 'c';
        const text = await app.encryption.encryptToString(payload);
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const sibling = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) ^ 1];
        // Node's decoder ignores the unused bits, so both strings carry the same envelope...
        expect(Buffer.from(sibling, 'base64url').equals(Buffer.from(text, 'base64url'))).toBe(true);
        expect(await app.encryption.decrypt(text)).toBe(payload);
        // ...but only the canonical one is accepted, so each ciphertext has exactly one text form.
        await expectGenericDecryptionFailure(app.encryption.decrypt(sibling));
      });

      test('a ciphertext with the right key id but another commitment is rejected', async () => {
        const forged = Buffer.from(ciphertext);
        randomBytes(32).copy(forged, commitmentStart());
        await expectGenericDecryptionFailure(app.encryption.decrypt(forged));
      });
    });

    test('error messages never contain the plaintext or key bytes', async () => {
      const masterKey = randomBytes(32);
      const keyStore = new InMemoryKeyStore();
      const secretApp = await createEncryptionTestApp({ masterKey, keyStore, maxDecompressedSize: 100 });
      try {
        const plaintext = 'TOP-SECRET-PLAINTEXT-7f3a9c';
        const stored = (await keyStore.load())!.keys[0];
        const ringSecret = unwrapKey(masterKey, stored.id, stored.wrappedKey!)!;
        expect(ringSecret).toHaveLength(32);
        const shortKey = Buffer.from('short-explicit-key-bytes-123');
        const explicitKey = randomBytes(32);
        const wrongKey = randomBytes(32);
        const secrets = [plaintext, ...[ringSecret, masterKey, shortKey, explicitKey, wrongKey].flatMap((key) => [
          key.toString('hex'),
          key.toString('base64'),
          key.toString('base64url'),
          key.toString('latin1'),
        ])];
        const { encryption } = secretApp;
        const ciphertext = await encryption.encrypt(plaintext.repeat(100));
        const errors = await Promise.all([
          rejectionOf(encryption.encrypt({ secret: plaintext, amount: 1n } as never)),
          rejectionOf(encryption.encrypt(plaintext, { key: shortKey })),
          rejectionOf(encryption.decrypt(ciphertext, { key: shortKey })),
          rejectionOf(encryption.decrypt(flipBit(ciphertext, ciphertext.length - 1))),
          rejectionOf(encryption.decrypt(await encryption.encrypt(plaintext, { context: 'a' }), { context: 'b' })),
          rejectionOf(encryption.decrypt(await encryption.encrypt(plaintext, { key: explicitKey }), { key: wrongKey })),
          rejectionOf(encryption.decrypt(ciphertext)),
          rejectionOf(encryption.encrypt(plaintext, { context: { secret: 1 } as never })),
        ]);
        expect(errors.map((error) => error.constructor)).toEqual([
          EncryptionInputError,
          EncryptionInputError,
          EncryptionInputError,
          DecryptionError,
          DecryptionError,
          KeyNotFoundError,
          DecompressionLimitError,
          EncryptionInputError,
        ]);
        for (const error of errors) {
          const rendered = [String(error), error.stack ?? '', JSON.stringify(error), inspect(error, { depth: 10 })].join('\n');
          for (const secret of secrets) expect(rendered).not.toContain(secret);
        }
      } finally {
        await secretApp.close();
      }
    });
  });
});
