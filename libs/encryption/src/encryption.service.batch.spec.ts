import { randomBytes } from 'node:crypto';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { parseEnvelope } from './crypto/envelope.js';
import type { Plaintext } from './crypto/plaintext-codec.js';
import {
  DecompressionLimitError,
  DecryptionError,
  EncryptionError,
  EncryptionInputError,
  KeyNotFoundError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { BatchItemResult } from './interfaces/batch-options.interface.js';
import type { EncryptionBatchEvent, EncryptionEvent } from './interfaces/encryption-event.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

function values<T>(results: BatchItemResult<T>[]): T[] {
  return results.map((result, index) => {
    if (!result.ok) throw new Error(`item ${index} failed: ${result.error.message}`);
    return result.value;
  });
}

function errorAt(results: BatchItemResult<unknown>[], index: number): Error {
  const result = results[index];
  if (result.ok) throw new Error(`item ${index} succeeded`);
  return result.error;
}

function flipBit(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

/** Records every event of an app until the returned function is called. */
function recordEvents(app: EncryptionTestApp): { events: EncryptionEvent[]; stop(): void } {
  const events: EncryptionEvent[] = [];
  const stop = app.events.subscribe((event) => events.push(event));
  return { events, stop };
}

const MIXED: Plaintext[] = [
  'hello',
  '',
  { name: 'Ada', tags: ['a', 'b'], n: 3.5 },
  [1, 2, 3],
  42,
  null,
  true,
  Buffer.from([0, 1, 2, 255]),
  new Uint8Array([9, 8, 7]),
  'Grüße, 世界 🔐',
  'x'.repeat(5000),
  { big: 'lorem ipsum '.repeat(2000) },
];

describe('EncryptionService.encryptMany / decryptMany', () => {
  let app: EncryptionTestApp;

  beforeAll(async () => {
    app = await apps.create();
  });

  it('keeps input order, and each ciphertext is what encrypt() makes: decrypt() and decryptMany() restore it', async () => {
    const results = await app.encryption.encryptMany(MIXED);
    expect(results).toHaveLength(MIXED.length);
    const ciphertexts = values(results);
    for (const [index, ciphertext] of ciphertexts.entries()) {
      await expect(app.encryption.decrypt(ciphertext)).resolves.toEqual(
        MIXED[index] instanceof Uint8Array ? Buffer.from(MIXED[index] as Uint8Array) : MIXED[index],
      );
    }
    const decrypted = values(await app.encryption.decryptMany(ciphertexts));
    expect(decrypted).toEqual(MIXED.map((value) => (value instanceof Uint8Array ? Buffer.from(value) : value)));
    // Text forms decrypt too, in the same call as binary ones.
    const mixedForms = ciphertexts.map((c, i) => (i % 2 ? c.toString('base64url') : c));
    expect(values(await app.encryption.decryptMany(mixedForms))).toEqual(decrypted);
  });

  it('gives every item a fresh nonce and the active key, and compresses items like encrypt()', async () => {
    const ciphertexts = values(await app.encryption.encryptMany(Array.from({ length: 200 }, () => 'same plaintext')));
    const nonces = new Set(ciphertexts.map((c) => parseEnvelope(c)!.nonce.toString('hex')));
    expect(nonces.size).toBe(200);
    expect(new Set(ciphertexts.map((c) => parseEnvelope(c)!.keyId))).toEqual(new Set([app.keys.activeKey.id]));

    const [big] = values(await app.encryption.encryptMany(['abc'.repeat(10_000)]));
    const single = await app.encryption.encrypt('abc'.repeat(10_000));
    expect(parseEnvelope(big)!.codec).toBe(parseEnvelope(single)!.codec);
    expect(big.length).toBe(single.length);
    const [uncompressed] = values(await app.encryption.encryptMany(['abc'.repeat(10_000)], { compress: false }));
    expect(uncompressed.length).toBeGreaterThan(30_000);
  });

  it('reports an unencodable item in its place, with the error encrypt() throws, and encrypts the rest', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const bad: unknown[] = [undefined, () => 1, Symbol('s'), 10n, Number.NaN, { nested: Number.POSITIVE_INFINITY }, circular];
    const items = ['first', ...bad, 'last'] as Plaintext[];
    const results = await app.encryption.encryptMany(items);
    expect(results).toHaveLength(items.length);
    expect(results[0].ok).toBe(true);
    expect(results.at(-1)!.ok).toBe(true);
    for (let index = 1; index <= bad.length; index++) {
      const error = errorAt(results, index);
      const expected = await rejectionOf(app.encryption.encrypt(items[index]));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(expected.message);
    }
    expect(errorAt(results, 1).message).toBe(MESSAGES.UNSUPPORTED_PLAINTEXT('undefined'));
    expect(errorAt(results, 5).message).toBe(MESSAGES.NON_FINITE_NUMBER);
    expect(values([results[0], results.at(-1)!]).length).toBe(2);
    await expect(app.encryption.decrypt((results.at(-1) as { value: Buffer }).value)).resolves.toBe('last');
  });

  it('reports every undecryptable item in its place and decrypts the rest', async () => {
    const [good, other] = values(await app.encryption.encryptMany(['good', { other: true }]));
    const [bound] = values(await app.encryption.encryptMany(['bound'], { context: 'tenant-a' }));
    const foreignKey = await apps.create();
    const unknownKey = await foreignKey.encryption.encrypt('made elsewhere');
    const items = [
      good,
      flipBit(good, good.length - 20), // ciphertext bit
      flipBit(good, good.length - 1), // tag bit
      flipBit(good, 2), // header flags
      good.subarray(0, good.length - 5), // truncated
      Buffer.alloc(0),
      'not base64url!',
      42 as unknown as string,
      null as unknown as string,
      { ciphertext: 'x' } as unknown as string,
      bound, // context missing
      unknownKey,
      other.toString('base64url'),
    ];
    const results = await app.encryption.decryptMany(items);
    expect(results).toHaveLength(items.length);
    expect(values([results[0], results[12]])).toEqual(['good', { other: true }]);
    for (let index = 1; index <= 10; index++) {
      const error = errorAt(results, index);
      expect(error.constructor).toBe(DecryptionError);
      expect(error.message).toBe('Decryption failed');
    }
    const missing = errorAt(results, 11);
    expect(missing).toBeInstanceOf(KeyNotFoundError);
    expect((missing as KeyNotFoundError).keyId).toBe(foreignKey.keys.activeKey.id);
    // The same item with its context decrypts.
    await expect(app.encryption.decryptMany([bound], { context: 'tenant-a', failFast: true })).resolves.toEqual(['bound']);
  });

  describe('failFast', () => {
    it('resolves to the ciphertexts and plaintexts themselves', async () => {
      const ciphertexts = await app.encryption.encryptMany(['a', { b: 1 }], { failFast: true });
      expect(ciphertexts.every((c) => Buffer.isBuffer(c))).toBe(true);
      await expect(app.encryption.decryptMany(ciphertexts, { failFast: true })).resolves.toEqual(['a', { b: 1 }]);
    });

    it('rejects encryptMany with the first failing item, in input order', async () => {
      const error = await rejectionOf(app.encryption.encryptMany(['ok', Number.NaN, undefined as never], { failFast: true }));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.NON_FINITE_NUMBER);
    });

    it('rejects decryptMany with the first failing item, in input order, even when a later one fails sooner', async () => {
      const [good] = await app.encryption.encryptMany(['good'], { failFast: true });
      const foreignKey = await apps.create();
      const unknownKey = await foreignKey.encryption.encrypt('made elsewhere');
      // The unknown key is only known to fail after a ring reload; the bit flip fails at once.
      const error = await rejectionOf(app.encryption.decryptMany([good, unknownKey, flipBit(good, good.length - 1)], { failFast: true }));
      expect(error).toBeInstanceOf(KeyNotFoundError);
      const tampered = await rejectionOf(app.encryption.decryptMany([flipBit(good, good.length - 1), unknownKey], { failFast: true }));
      expect(tampered.constructor).toBe(DecryptionError);
    });
  });

  it('decrypts items of several key versions and algorithms in one call, and counts each key’s use', async () => {
    const store = new InMemoryKeyStore();
    const masterKey = randomBytes(32);
    const gcm = await apps.create({ keyStore: store, masterKey });
    const first = values(await gcm.encryption.encryptMany(['v1-a', 'v1-b']));
    const v1 = gcm.keys.activeKey;
    await gcm.keys.rotate();
    const second = values(await gcm.encryption.encryptMany(['v2-a', 'v2-b', 'v2-c']));
    const v2 = gcm.keys.activeKey;
    await gcm.keys.rotate();
    // Another instance with ChaCha20-Poly1305 over the same ring writes with the newest key.
    const chacha = await apps.create({ keyStore: store, masterKey, algorithm: 'ChaCha20-Poly1305' });
    const third = values(await chacha.encryption.encryptMany(['v3-chacha']));
    expect(new Set([...first, ...second, ...third].map((c) => parseEnvelope(c)!.keyId)).size).toBe(3);

    const before = new Map(gcm.keys.listKeys().map((key) => [key.id, key.decryptions]));
    const interleaved = [second[0], first[0], third[0], second[1], first[1], second[2]];
    await expect(gcm.encryption.decryptMany(interleaved, { failFast: true })).resolves.toEqual([
      'v2-a',
      'v1-a',
      'v3-chacha',
      'v2-b',
      'v1-b',
      'v2-c',
    ]);
    const after = new Map(gcm.keys.listKeys().map((key) => [key.id, key.decryptions]));
    expect(after.get(v1.id)! - before.get(v1.id)!).toBe(2);
    expect(after.get(v2.id)! - before.get(v2.id)!).toBe(3);
  });

  it('shares the context and an explicit key across the batch, falling back to the ring by key id', async () => {
    const key = randomBytes(32);
    const bound = await app.encryption.encryptMany(['a', 'b'], { context: { tenant: 'acme' }, failFast: true });
    await expect(app.encryption.decryptMany(bound, { context: { tenant: 'acme' }, failFast: true })).resolves.toEqual(['a', 'b']);
    const unbound = await app.encryption.decryptMany(bound);
    expect(unbound.every((result) => !result.ok && result.error.constructor === DecryptionError)).toBe(true);

    const own = await app.encryption.encryptMany(['own-1', 'own-2'], { key, failFast: true });
    const ring = await app.encryption.encrypt('ring');
    expect(parseEnvelope(own[0])!.keyId).toMatch(/^x-[0-9a-f]{16}$/);
    await expect(app.encryption.decryptMany([own[0], ring, own[1]], { key, failFast: true })).resolves.toEqual(['own-1', 'ring', 'own-2']);
    const withoutKey = await app.encryption.decryptMany([own[0]]);
    expect(errorAt(withoutKey, 0)).toBeInstanceOf(KeyNotFoundError);
  });

  it('refuses call-level mistakes for the whole call', async () => {
    const notArray = await rejectionOf(app.encryption.encryptMany('abc' as never));
    expect(notArray).toBeInstanceOf(EncryptionInputError);
    expect(notArray.message).toBe(MESSAGES.BATCH_NOT_AN_ARRAY);
    await expect(app.encryption.decryptMany(undefined as never)).rejects.toBeInstanceOf(EncryptionInputError);
    await expect(app.encryption.encryptMany(['a'], { context: 5 as never })).rejects.toThrow(MESSAGES.INVALID_CONTEXT);
    await expect(app.encryption.encryptMany(['a'], { key: Buffer.alloc(8) })).rejects.toThrow(MESSAGES.INVALID_EXPLICIT_KEY(32));
    await expect(app.encryption.encryptMany([])).resolves.toEqual([]);
    await expect(app.encryption.decryptMany([], { failFast: true })).resolves.toEqual([]);
  });

  it('bounds decompression per item: an item that would inflate past maxDecompressedSize fails alone', async () => {
    const small = await apps.create({ maxDecompressedSize: 4000, compressionThreshold: 100 });
    const [bomb, fine] = await small.encryption.encryptMany(['a'.repeat(50_000), 'b'.repeat(3000)], { failFast: true });
    const results = await small.encryption.decryptMany([bomb, fine, bomb.toString('base64url')]);
    expect(errorAt(results, 0)).toBeInstanceOf(DecompressionLimitError);
    expect(errorAt(results, 0).message).toBe(MESSAGES.DECOMPRESSION_LIMIT(4000));
    expect(errorAt(results, 2)).toBeInstanceOf(DecompressionLimitError);
    expect(values([results[1]])).toEqual(['b'.repeat(3000)]);
    // decompress: false hands the compressed bytes back instead.
    const raw = await small.encryption.decryptMany([bomb], { decompress: false, failFast: true });
    expect(Buffer.isBuffer(raw[0]) && (raw[0] as Buffer).length < 1000).toBe(true);
  });

  it('round-trips a large batch of 10,000 values', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? { id: i, note: 'n'.repeat(i % 1500) } : `value ${i}`));
    const ciphertexts = await app.encryption.encryptMany(items, { failFast: true });
    expect(ciphertexts).toHaveLength(10_000);
    await expect(app.encryption.decryptMany(ciphertexts, { failFast: true })).resolves.toEqual(items);
  });

  it('emits one batch event per call, with counts and sizes, and no per-item events', async () => {
    const { events, stop } = recordEvents(app);
    try {
      const results = await app.encryption.encryptMany(['a', 'bb', undefined as never, 'ccc']);
      const ciphertexts = results.filter((r) => r.ok).map((r) => (r as { value: Buffer }).value);
      await app.encryption.decryptMany([...ciphertexts, 'garbage']);
      await rejectionOf(app.encryption.decryptMany(['garbage', ciphertexts[0]], { failFast: true }));
    } finally {
      stop();
    }
    expect(events.map((e) => e.type)).toEqual(['batch', 'batch', 'batch']);
    const [encrypted, decrypted, failedFast] = events as EncryptionBatchEvent[];
    expect(encrypted).toMatchObject({
      operation: 'encrypt',
      algorithm: 'AES-256-GCM',
      items: 4,
      succeeded: 3,
      failed: 1,
      errorCodes: { INVALID_INPUT: 1 },
      plaintextBytes: 6,
    });
    expect(encrypted.ciphertextBytes).toBeGreaterThan(3 * 60);
    expect(encrypted.durationSeconds).toBeGreaterThan(0);
    expect(decrypted).toMatchObject({ operation: 'decrypt', items: 4, succeeded: 3, failed: 1, errorCodes: { DECRYPTION_FAILED: 1 }, plaintextBytes: 6 });
    // failFast stops starting work after the first failure.
    expect(failedFast).toMatchObject({ operation: 'decrypt', failed: 1, errorCodes: { DECRYPTION_FAILED: 1 } });
    expect(failedFast.succeeded).toBeLessThanOrEqual(1);
  });

  it('makes Fernet tokens with algorithm "fernet", and decrypts Fernet and native items together', async () => {
    const store = new InMemoryKeyStore();
    const masterKey = randomBytes(32);
    const fernet = await apps.create({ algorithm: 'fernet', keyStore: store, masterKey });
    const tokens = await fernet.encryption.encryptMany(['t1', Buffer.from('t2')], { failFast: true });
    expect(tokens[0][0]).toBe(0x80);
    const native = await apps.create({ keyStore: store, masterKey });
    const envelope = await native.encryption.encrypt('native');
    const text = await fernet.encryption.encryptToString('t3');
    const results = await native.encryption.decryptMany([tokens[0], envelope, tokens[1], text], { as: 'string' });
    expect(values(results)).toEqual(['t1', 'native', 't2', 't3']);
    const refused = await fernet.encryption.encryptMany(['x'], { context: 'ctx' });
    expect(errorAt(refused, 0)).toBeInstanceOf(EncryptionError);
    expect(errorAt(refused, 0).message).toBe(MESSAGES.FERNET_OPTION_UNSUPPORTED('an encryption context'));
  });
});
