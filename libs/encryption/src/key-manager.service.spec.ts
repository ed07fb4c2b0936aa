import {
  constants,
  createPrivateKey,
  createPublicKey,
  pbkdf2Sync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { inspect } from 'node:util';

import { Test } from '@nestjs/testing';
import { calculateJwkThumbprint } from 'jose';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { AEAD_CIPHERS } from './crypto/aead.js';
import { fromBase64, toBase64 } from './crypto/base64.js';
import { DataKey } from './crypto/data-key.js';
import { parseEnvelope } from './crypto/envelope.js';
import { unwrapKey, wrapKey } from './crypto/key-wrap.js';
import { EncryptionModule } from './encryption.module.js';
import { EncryptionService } from './encryption.service.js';
import {
  DecryptionError,
  EncryptionConfigError,
  EncryptionError,
  EncryptionInputError,
  KeyRetiredError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { KeyMetadata } from './interfaces/key-metadata.interface.js';
import type { StoredKey, StoredKeyRing } from './interfaces/key-store.interface.js';
import { KeyManagerService } from './key-manager.service.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

const keyIdOf = (ciphertext: Buffer): string => parseEnvelope(ciphertext)!.keyId;

/** The in-memory store with real asynchronous latency, so rotations genuinely interleave with other work. */
class SlowKeyStore extends InMemoryKeyStore {
  override async load(): Promise<StoredKeyRing | undefined> {
    await new Promise((resolve) => setImmediate(resolve));
    return super.load();
  }

  override async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    return super.save(ring, expectedRevision);
  }
}

function storedKey(masterKey: Buffer, version: number, state: StoredKey['state'], createdAt = new Date()): StoredKey {
  const id = `k${version}-${randomBytes(8).toString('hex')}`;
  return { id, version, state, createdAt: createdAt.toISOString(), wrappedKey: wrapKey(masterKey, id, randomBytes(32)) };
}

describe('KeyManagerService', () => {
  describe('key ring lifecycle', () => {
    test('boot creates exactly one active key, version 1, stored only in wrapped form', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const { keys, encryption } = await apps.create({ keyStore, masterKey });

      const listed = keys.listKeys();
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ version: 1, state: 'active', encryptions: 0, decryptions: 0 });
      expect(listed[0].id).toMatch(/^k1-[0-9a-f]{16}$/);
      expect(keys.activeKey.id).toBe(listed[0].id);
      expect(keyIdOf(await encryption.encrypt('x'))).toBe(listed[0].id);

      const stored = (await keyStore.load())!;
      expect(stored.keys).toHaveLength(1);
      expect(stored.keys[0]).toMatchObject({ id: listed[0].id, version: 1, state: 'active' });
      expect(unwrapKey(masterKey, stored.keys[0].id, stored.keys[0].wrappedKey!)).toHaveLength(32);
      expect(unwrapKey(randomBytes(32), stored.keys[0].id, stored.keys[0].wrappedKey!)).toBeUndefined();
    });

    test('a second instance on the same store and master key loads the ring instead of creating a key', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const first = await apps.create({ keyStore, masterKey });
      const second = await apps.create({ keyStore, masterKey });
      expect(second.keys.listKeys().map((k) => k.id)).toEqual(first.keys.listKeys().map((k) => k.id));
      expect(await second.encryption.decrypt(await first.encryption.encrypt('shared'))).toBe('shared');
    });

    test('booting on a stored ring with the wrong master key fails with EncryptionConfigError', async () => {
      const keyStore = new InMemoryKeyStore();
      await apps.create({ keyStore, masterKey: randomBytes(32) });
      await expect(apps.create({ keyStore, masterKey: randomBytes(32) })).rejects.toBeInstanceOf(EncryptionConfigError);
    });

    test('rotate() makes a new active key; the previous one becomes decrypt-only and keeps decrypting', async () => {
      const { keys, encryption } = await apps.create();
      const before = await encryption.encrypt('before');
      const first = keys.activeKey.id;

      const rotated = await keys.rotate();
      expect(rotated).toMatchObject({ version: 2, state: 'active', encryptions: 0, decryptions: 0 });
      expect(keys.activeKey.id).toBe(rotated.id);
      expect(keys.listKeys().map((k) => [k.version, k.state])).toEqual([
        [2, 'active'],
        [1, 'decrypt-only'],
      ]);

      const after = await encryption.encrypt('after');
      expect(keyIdOf(before)).toBe(first);
      expect(keyIdOf(after)).toBe(rotated.id);
      expect(await encryption.decrypt(before)).toBe('before');
      expect(await encryption.decrypt(after)).toBe('after');
    });

    test('the rotated ring is persisted: a fresh instance on the same store decrypts old and new ciphertexts', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const { keys, encryption } = await apps.create({ keyStore, masterKey });
      const old = await encryption.encrypt('old');
      await keys.rotate();
      const fresh = await encryption.encrypt('fresh');
      const restarted = await apps.create({ keyStore, masterKey });
      expect(restarted.keys.listKeys().map((k) => k.version)).toEqual([2, 1]);
      expect(await restarted.encryption.decrypt(old)).toBe('old');
      expect(await restarted.encryption.decrypt(fresh)).toBe('fresh');
    });

    test('a rotation whose store write fails rejects, and later rotations still work', async () => {
      let failNext = false;
      class FlakyStore extends InMemoryKeyStore {
        override async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
          if (failNext) {
            failNext = false;
            throw new Error('store unavailable');
          }
          return super.save(ring, expectedRevision);
        }
      }
      const { keys, encryption } = await apps.create({ keyStore: new FlakyStore() });
      const active = keys.activeKey.id;
      failNext = true;
      const [failed, next] = await Promise.allSettled([keys.rotate(), keys.rotate()]);
      expect(failed.status).toBe('rejected');
      expect(keys.listKeys().map((k) => k.version)).toEqual([2, 1]);
      expect(next).toMatchObject({ status: 'fulfilled', value: { version: 2 } });
      expect(keys.activeKey.id).not.toBe(active);
      expect(await encryption.decrypt(await encryption.encrypt('ok'))).toBe('ok');
    });
  });

  describe('concurrent rotation', () => {
    test('rotate({ ifActiveKeyId }) rotates away from that key once; later calls naming it join that rotation', async () => {
      const { keys } = await apps.create();
      const seen = keys.activeKey.id;
      const [first, second, third] = await Promise.all([
        keys.rotate({ ifActiveKeyId: seen }),
        keys.rotate({ ifActiveKeyId: seen }),
        keys.rotate({ ifActiveKeyId: seen }),
      ]);
      expect(first.version).toBe(2);
      expect(second.id).toBe(first.id);
      expect(third.id).toBe(first.id);
      expect(keys.listKeys().map((key) => key.version)).toEqual([2, 1]);
      // An unconditional call still rotates.
      await expect(keys.rotate()).resolves.toMatchObject({ version: 3 });
    });

    test('ciphertexts made before, during and after many concurrent rotations all decrypt', async () => {
      const { keys, encryption } = await apps.create({ keyStore: new SlowKeyStore() });
      const value = (i: number) => ({ i, padding: 'p'.repeat((i % 20) * 100) });
      const before = await Promise.all(Array.from({ length: 20 }, (_, i) => encryption.encrypt(value(i))));

      let rotating = true;
      const rotations = Promise.all(Array.from({ length: 30 }, () => keys.rotate())).finally(() => (rotating = false));
      // Encrypt and decrypt continuously, a batch per event-loop turn, for as long as rotations run.
      const during: { ciphertext: Buffer; i: number }[] = [];
      const decryptedDuring: unknown[] = [];
      for (let i = 0; rotating; i++) {
        const batch = await Promise.all([
          encryption.encrypt(value(i)),
          encryption.encrypt(value(i + 1)),
          encryption.decrypt(before[i % before.length]),
          during.length ? encryption.decrypt(during[during.length - 1].ciphertext) : null,
        ]);
        during.push({ ciphertext: batch[0], i }, { ciphertext: batch[1], i: i + 1 });
        decryptedDuring.push(batch[2], batch[3]);
        expect(batch[2]).toEqual(value(i % before.length));
        if (during.length > 2) expect(batch[3]).toEqual(value(during[during.length - 3].i));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await rotations;
      // Encryptions during rotation used many different keys, so rotation really interleaved.
      expect(new Set(during.map(({ ciphertext }) => keyIdOf(ciphertext))).size).toBeGreaterThan(5);

      const after = await encryption.encrypt('after');
      expect(keyIdOf(after)).toBe(keys.activeKey.id);
      expect(keys.activeKey.version).toBe(31);
      for (const [i, ciphertext] of before.entries()) expect(await encryption.decrypt(ciphertext)).toEqual(value(i));
      for (const { ciphertext, i } of during) expect(await encryption.decrypt(ciphertext)).toEqual(value(i));
      expect(await encryption.decrypt(after)).toBe('after');
    });

    test.each([
      ['in-memory store', () => new InMemoryKeyStore()],
      ['store with latency', () => new SlowKeyStore()],
    ])('N concurrent rotate() calls make exactly N new consecutive versions (%s)', async (_name, makeStore) => {
      const { keys } = await apps.create({ keyStore: makeStore() });
      const n = 25;
      const results = await Promise.all(Array.from({ length: n }, () => keys.rotate()));

      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 2));
      expect(new Set(results.map((r) => r.id)).size).toBe(n);
      const listed = keys.listKeys();
      expect(listed.map((k) => k.version)).toEqual(Array.from({ length: n + 1 }, (_, i) => n + 1 - i));
      expect(new Set(listed.map((k) => k.id)).size).toBe(n + 1);
      expect(listed.filter((k) => k.state === 'active')).toEqual([expect.objectContaining({ version: n + 1 })]);
    });

    test('exactly one active key at every moment while rotations run', async () => {
      const { keys, encryption } = await apps.create({ keyStore: new SlowKeyStore() });
      let done = false;
      let samples = 0;
      const activeIdsSeen = new Set<string>();
      const sampler = (async () => {
        while (!done) {
          const active = keys.listKeys().filter((k) => k.state === 'active');
          expect(active).toHaveLength(1);
          expect(keys.activeKey.id).toBe(active[0].id);
          activeIdsSeen.add(active[0].id);
          samples++;
          await (samples % 2 ? null : new Promise((resolve) => setImmediate(resolve)));
        }
      })();
      await Promise.all([...Array.from({ length: 15 }, () => keys.rotate()), encryption.encrypt('meanwhile')]);
      done = true;
      await sampler;
      expect(samples).toBeGreaterThan(15);
      expect(activeIdsSeen.size).toBeGreaterThan(2);
    });

    test('two instances rotating one shared store concurrently never lose or fork the ring', async () => {
      const keyStore = new SlowKeyStore();
      const masterKey = randomBytes(32);
      const a = await apps.create({ keyStore, masterKey });
      const b = await apps.create({ keyStore, masterKey });
      const results = await Promise.all([
        ...Array.from({ length: 6 }, () => a.keys.rotate()),
        ...Array.from({ length: 6 }, () => b.keys.rotate()),
      ]);

      await a.keys.reload();
      await b.keys.reload();
      const stored = (await keyStore.load())!;
      const versions = stored.keys.map((k) => k.version);
      // Rotations that meet in the store may coalesce into one key, but none is lost and none is duplicated.
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => versions.length - i));
      expect(versions.length).toBeGreaterThanOrEqual(7);
      expect(versions.length).toBeLessThanOrEqual(13);
      expect(new Set(stored.keys.map((k) => k.id)).size).toBe(stored.keys.length);
      expect(stored.keys.filter((k) => k.state === 'active')).toHaveLength(1);
      for (const result of results) expect(stored.keys.map((k) => k.id)).toContain(result.id);

      expect(a.keys.listKeys().map((k) => [k.id, k.state])).toEqual(stored.keys.map((k) => [k.id, k.state]));
      expect(b.keys.listKeys().map((k) => [k.id, k.state])).toEqual(stored.keys.map((k) => [k.id, k.state]));
      expect(a.keys.activeKey.id).toBe(b.keys.activeKey.id);
      expect(await a.encryption.decrypt(await b.encryption.encrypt('b to a'))).toBe('b to a');
      expect(await b.encryption.decrypt(await a.encryption.encrypt('a to b'))).toBe('a to b');
    });
  });

  describe('retention', () => {
    /** A key beyond the retention policy is retired: listed, but its bytes are gone and it refuses decryption. */
    async function expectRetired(app: EncryptionTestApp, ciphertext: Buffer): Promise<void> {
      const error = await app.encryption.decrypt(ciphertext).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyRetiredError);
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error).toMatchObject({ code: 'KEY_RETIRED', message: MESSAGES.KEY_RETIRED, keyId: keyIdOf(ciphertext) });
      const key = app.keys.findKey(keyIdOf(ciphertext))!;
      expect(key.state).toBe('retired');
      expect(key.dataKey).toBeUndefined();
    }

    test('keyRetention.maxPreviousKeys keeps that many previous keys usable; older ones are retired and refuse decryption', async () => {
      const keyStore = new InMemoryKeyStore();
      const app = await apps.create({ keyStore, masterKey: randomBytes(32), keyRetention: { maxPreviousKeys: 2 } });
      const ciphertexts = [await app.encryption.encrypt('v1')];
      for (let v = 2; v <= 6; v++) {
        await app.keys.rotate();
        ciphertexts.push(await app.encryption.encrypt(`v${v}`));
      }
      const states = [
        [6, 'active'],
        [5, 'decrypt-only'],
        [4, 'decrypt-only'],
        [3, 'retired'],
        [2, 'retired'],
        [1, 'retired'],
      ];
      expect(app.keys.listKeys().map((k) => [k.version, k.state])).toEqual(states);
      expect((await keyStore.load())!.keys.map((k) => [k.version, k.state])).toEqual(states);
      for (const [i, ciphertext] of ciphertexts.entries()) {
        const version = i + 1;
        if (version <= 3) await expectRetired(app, ciphertext);
        else expect(await app.encryption.decrypt(ciphertext)).toBe(`v${version}`);
      }
    });

    test('maxPreviousKeys: 0 keeps no previous key usable', async () => {
      const app = await apps.create({ keyRetention: { maxPreviousKeys: 0 } });
      const old = await app.encryption.encrypt('old');
      await app.keys.rotate();
      expect(app.keys.listKeys().map((k) => [k.version, k.state])).toEqual([
        [2, 'active'],
        [1, 'retired'],
      ]);
      await expectRetired(app, old);
    });

    test('keyRetention.maxAgeMs retires previous keys older than the limit at the next rotation', async () => {
      const HOUR = 60 * 60 * 1000;
      let now = Date.UTC(2030, 0, 1);
      const clock = { now: () => now };
      const app = await apps.create({ clock, keyRetention: { maxAgeMs: 24 * HOUR } });
      const c1 = await app.encryption.encrypt('made under v1');
      expect(app.keys.listKeys()[0].createdAt.getTime()).toBe(now);

      now += 12 * HOUR;
      await app.keys.rotate();
      const c2 = await app.encryption.encrypt('made under v2');
      expect(app.keys.listKeys().map((k) => [k.version, k.state, k.ageMs])).toEqual([
        [2, 'active', 0],
        [1, 'decrypt-only', 12 * HOUR],
      ]);

      now += 18 * HOUR; // v1 is now 30 h old, v2 18 h.
      await app.keys.rotate();
      expect(app.keys.listKeys().map((k) => [k.version, k.state])).toEqual([
        [3, 'active'],
        [2, 'decrypt-only'],
        [1, 'retired'],
      ]);
      await expectRetired(app, c1);
      expect(await app.encryption.decrypt(c2)).toBe('made under v2');
    });

    test('without a retention policy every previous key stays usable', async () => {
      const { keys, encryption } = await apps.create();
      const first = await encryption.encrypt('first');
      for (let i = 0; i < 40; i++) await keys.rotate();
      expect(keys.listKeys()).toHaveLength(41);
      expect(keys.listKeys().filter((k) => k.state === 'decrypt-only')).toHaveLength(40);
      expect(await encryption.decrypt(first)).toBe('first');
    });
  });

  describe('listKeys()', () => {
    const DOCUMENTED_FIELDS = ['id', 'version', 'state', 'createdAt', 'ageMs', 'encryptions', 'decryptions', 'lastUsedAt'];

    test('counts encryptions and decryptions per key and records the last use', async () => {
      const { keys, encryption } = await apps.create();
      const start = Date.now();
      const ciphertexts = await Promise.all(['a', 'b', 'c'].map((v) => encryption.encrypt(v)));
      await encryption.decrypt(ciphertexts[0]);
      await encryption.decrypt(ciphertexts[1].toString('base64url'));
      const [v1] = keys.listKeys();
      expect(v1).toMatchObject({ version: 1, encryptions: 3, decryptions: 2 });
      expect(v1.lastUsedAt).toBeInstanceOf(Date);
      expect(v1.lastUsedAt!.getTime()).toBeGreaterThanOrEqual(start);
      expect(v1.lastUsedAt!.getTime()).toBeLessThanOrEqual(Date.now());

      await keys.rotate();
      await encryption.decrypt(ciphertexts[2]);
      await encryption.encrypt('under v2');
      const [v2, v1After] = keys.listKeys();
      expect(v2).toMatchObject({ version: 2, encryptions: 1, decryptions: 0 });
      expect(v1After).toMatchObject({ version: 1, state: 'decrypt-only', encryptions: 3, decryptions: 3 });
    });

    test('an unused key has no lastUsedAt', async () => {
      const { keys } = await apps.create();
      expect(keys.listKeys()[0].lastUsedAt).toBeUndefined();
    });

    test('shows only the documented metadata fields and never any key material', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const { keys, encryption } = await apps.create({ keyStore, masterKey });
      await encryption.decrypt(await encryption.encrypt('use it'));
      await keys.rotate();

      const listed = keys.listKeys();
      const stored = (await keyStore.load())!.keys;
      const material: Buffer[] = [masterKey];
      for (const key of stored) {
        const secret = unwrapKey(masterKey, key.id, key.wrappedKey!)!;
        const dataKey = new DataKey(key.id, Buffer.from(secret));
        material.push(secret, ...AEAD_CIPHERS.map((cipher) => dataKey.cipherKey(cipher)));
      }
      const forbidden = [
        ...stored.map((key) => key.wrappedKey!),
        ...material.flatMap((bytes) => [bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url')]),
      ];
      const rendered = [JSON.stringify(listed), inspect(listed, { depth: 10, showHidden: true })].join('\n');
      for (const value of forbidden) expect(rendered).not.toContain(value);
      // Each key's bytes also must not appear as a JSON array of numbers (a serialised Buffer).
      expect(rendered).not.toMatch(/"type":"Buffer"/);

      for (const metadata of listed) {
        for (const field of Object.keys(metadata)) expect(DOCUMENTED_FIELDS).toContain(field);
        for (const value of Object.values(metadata)) {
          expect(value === undefined || value instanceof Date || ['string', 'number'].includes(typeof value)).toBe(true);
        }
      }
    });

    test('returned metadata is a snapshot: mutating it changes nothing', async () => {
      const { keys } = await apps.create();
      const [listed] = keys.listKeys() as KeyMetadata[];
      listed.encryptions = 999;
      listed.state = 'decrypt-only';
      expect(keys.listKeys()[0]).toMatchObject({ encryptions: 0, state: 'active' });
    });
  });

  test('decrypts with a ring of 10,000 retained keys, oldest, middle and newest', async () => {
    const keyStore = new InMemoryKeyStore();
    const masterKey = randomBytes(32);
    const { keys, encryption } = await apps.create({ keyStore, masterKey });
    const c1 = await encryption.encrypt('under v1');

    // Grow the ring in the store directly: far faster than 10,000 rotations, same stored form.
    const grow = async (toVersion: number) => {
      const current = (await keyStore.load())!;
      const kept = current.keys.map((k) => ({ ...k, state: 'decrypt-only' as const }));
      const added: StoredKey[] = [];
      for (let v = current.keys[0].version + 1; v <= toVersion; v++) {
        added.unshift(storedKey(masterKey, v, v === toVersion ? 'active' : 'decrypt-only'));
      }
      expect(await keyStore.save({ revision: current.revision + 1, keys: [...added, ...kept] }, current.revision)).toBe(true);
      await keys.reload();
    };

    await grow(5000);
    const c5000 = await encryption.encrypt('under v5000');
    await grow(10_000);
    const c10000 = await encryption.encrypt('under v10000');

    expect(keys.listKeys()).toHaveLength(10_000);
    expect(keys.activeKey.version).toBe(10_000);
    expect(keys.findKey(keyIdOf(c5000))!.version).toBe(5000);
    expect(await encryption.decrypt(c1)).toBe('under v1');
    expect(await encryption.decrypt(c5000)).toBe('under v5000');
    expect(await encryption.decrypt(c10000)).toBe('under v10000');

    // Many decryptions against the large ring, and one more rotation on top of it.
    const batch = await Promise.all(Array.from({ length: 200 }, (_, i) => encryption.encrypt({ i })));
    expect(await Promise.all(batch.map((c) => encryption.decrypt(c)))).toEqual(Array.from({ length: 200 }, (_, i) => ({ i })));
    await keys.rotate();
    expect(keys.listKeys()).toHaveLength(10_001);
    expect(await encryption.decrypt(c1)).toBe('under v1');
  });

  test('the key ring is not available before the module initialises', async () => {
    const module = await Test.createTestingModule({ imports: [EncryptionModule.forRoot({})] }).compile();
    try {
      const error = (() => {
        try {
          module.get(KeyManagerService).listKeys();
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(EncryptionError);
      expect(error).toMatchObject({ code: 'KEY_RING_NOT_READY', message: MESSAGES.KEY_RING_NOT_READY });
      await expect(module.get(EncryptionService).encrypt('x')).rejects.toMatchObject({ code: 'KEY_RING_NOT_READY' });
    } finally {
      await module.close();
    }
  });

  describe('deriveKey()', () => {
    const iterations = 100_000;
    let app: Awaited<ReturnType<typeof apps.create>>;
    beforeAll(async () => {
      app = await apps.create({ iterations, saltSize: 24, keySize: 64 });
    });

    test('equals PBKDF2-HMAC-SHA256 from node:crypto with the configured iterations and keySize', async () => {
      const salt = randomBytes(16);
      const derived = await app.keys.deriveKey('correct horse battery staple', salt);
      expect(derived.key).toEqual(pbkdf2Sync('correct horse battery staple', salt, iterations, 64, 'sha256'));
      expect(derived.key).toHaveLength(64);
    });

    test('uses the default 600,000 iterations and 32-byte keys when not configured', async () => {
      const { keys } = await apps.create();
      const salt = randomBytes(16);
      const derived = await keys.deriveKey('pw', salt);
      expect(derived.key).toEqual(pbkdf2Sync('pw', salt, 600_000, 32, 'sha256'));
    });

    test('makes a random salt of saltSize bytes when none is given', async () => {
      const [a, b] = await Promise.all([app.keys.deriveKey('same'), app.keys.deriveKey('same')]);
      expect(a.salt).toHaveLength(24);
      expect(b.salt).toHaveLength(24);
      expect(a.salt.equals(b.salt)).toBe(false);
      expect(a.key.equals(b.key)).toBe(false);
      expect(a.key).toEqual(pbkdf2Sync('same', a.salt, iterations, 64, 'sha256'));
    });

    test('reuses a given salt, so the same password derives the same key again', async () => {
      const salt = randomBytes(32);
      const first = await app.keys.deriveKey('p4ssw0rd', salt);
      const second = await app.keys.deriveKey('p4ssw0rd', Buffer.from(salt));
      expect(first.salt).toEqual(salt);
      expect(second.key).toEqual(first.key);
      expect((await app.keys.deriveKey('p4ssw0rD', salt)).key.equals(first.key)).toBe(false);
    });

    test('accepts Buffer and unicode passwords (as UTF-8)', async () => {
      const salt = randomBytes(16);
      const fromBuffer = await app.keys.deriveKey(Buffer.from([0xff, 0x00, 0x80]), salt);
      expect(fromBuffer.key).toEqual(pbkdf2Sync(Buffer.from([0xff, 0x00, 0x80]), salt, iterations, 64, 'sha256'));
      const unicode = await app.keys.deriveKey('пароль 🔑', salt);
      expect(unicode.key).toEqual(pbkdf2Sync(Buffer.from('пароль 🔑', 'utf8'), salt, iterations, 64, 'sha256'));
    });

    test.each([
      ['an empty string', ''],
      ['an empty Buffer', Buffer.alloc(0)],
    ])('%s password is an EncryptionInputError', async (_name, password) => {
      await expect(app.keys.deriveKey(password)).rejects.toThrow(new EncryptionInputError(MESSAGES.EMPTY_PASSWORD));
      await expect(app.keys.deriveKey(password)).rejects.toBeInstanceOf(EncryptionInputError);
    });

    test('a salt shorter than 16 bytes is an EncryptionInputError', async () => {
      await expect(app.keys.deriveKey('pw', randomBytes(15))).rejects.toThrow(new EncryptionInputError(MESSAGES.SALT_TOO_SHORT(16)));
    });

    test('enableKeyDerivation: false makes it an EncryptionConfigError', async () => {
      const { keys } = await apps.create({ enableKeyDerivation: false });
      const error = await keys.deriveKey('pw').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EncryptionConfigError);
      expect((error as Error).message).toBe(MESSAGES.FEATURE_DISABLED('Key derivation', 'enableKeyDerivation'));
    });

    test('is asynchronous: the event loop keeps running while the key is derived', async () => {
      const { keys } = await apps.create(); // 600,000 iterations: long enough to observe.
      let done = false;
      let immediateFired = false;
      setImmediate(() => {
        immediateFired = true;
      });
      const pending = keys.deriveKey('pw').then((derived) => {
        done = true;
        return derived;
      });
      expect(pending).toBeInstanceOf(Promise);
      let ticks = 0;
      while (!done) {
        await new Promise((resolve) => setImmediate(resolve));
        ticks++;
      }
      expect(immediateFired).toBe(true);
      // A blocking implementation would finish before the first tick.
      expect(ticks).toBeGreaterThan(1);
      expect((await pending).key).toHaveLength(32);
    });
  });

  describe('toBase64 / fromBase64', () => {
    test.each([0, 1, 2, 3, 4, 16, 31, 32, 33, 100])('round trips %i random bytes', (size) => {
      const bytes = randomBytes(size);
      const text = toBase64(bytes);
      expect(text).toBe(bytes.toString('base64'));
      expect(fromBase64(text)).toEqual(bytes);
    });

    test('encodes only the viewed bytes of a Uint8Array', () => {
      const view = new Uint8Array([1, 2, 3, 4, 5]).subarray(1, 3);
      expect(toBase64(view)).toBe(Buffer.from([2, 3]).toString('base64'));
    });

    test.each([
      ['missing padding', 'YQ'],
      ['bad length', 'abc'],
      ['padding in the middle', 'YQ==YQ=='],
      ['too much padding', 'Y==='],
      ['base64url alphabet', 'ab-_'],
      ['whitespace', 'YWJj ZA=='],
      ['line break', 'YWJj\nZGVm'],
      ['invalid character', 'YW$j'],
      ['non-canonical trailing bits (one byte)', 'YR=='],
      ['non-canonical trailing bits (two bytes)', 'YWJ='],
    ])('fromBase64 rejects %s', (_name, text) => {
      expect(fromBase64(text)).toBeUndefined();
    });
  });

  describe('generateKeyPair()', () => {
    test('makes a 2048-bit RSA key pair in PEM and JWK form, identified by its JWK thumbprint', async () => {
      const { keys } = await apps.create();
      const pair = await keys.generateKeyPair();

      const publicKey = createPublicKey(pair.publicKeyPem);
      const privateKey = createPrivateKey(pair.privateKeyPem);
      expect(publicKey.asymmetricKeyType).toBe('rsa');
      expect(publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
      expect(privateKey.asymmetricKeyDetails!.modulusLength).toBe(2048);
      expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

      expect(pair.publicJwk).toMatchObject({ kty: 'RSA', kid: pair.keyId, alg: 'RSA-OAEP-256', use: 'enc' });
      expect(pair.publicJwk).not.toHaveProperty('d');
      expect(pair.privateJwk).toMatchObject({ kty: 'RSA', kid: pair.keyId, n: pair.publicJwk.n, e: pair.publicJwk.e });
      for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(pair.privateJwk).toHaveProperty(field);
      // The JWK and the PEM are the same key.
      expect(publicKey.export({ format: 'jwk' })).toMatchObject({ n: pair.publicJwk.n, e: pair.publicJwk.e });

      expect(pair.keyId).toBe(await calculateJwkThumbprint({ kty: 'RSA', n: pair.publicJwk.n, e: pair.publicJwk.e }, 'sha256'));
      expect(pair.keyId).toBe(await calculateJwkThumbprint(pair.publicJwk, 'sha256'));
    });

    test('a message encrypted with the public PEM (OAEP, SHA-256) decrypts with the private PEM and JWK', async () => {
      const { keys } = await apps.create();
      const pair = await keys.generateKeyPair();
      const message = Buffer.from('a wrapped data key, for example');
      const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
      const ciphertext = publicEncrypt({ key: pair.publicKeyPem, ...oaep }, message);
      expect(privateDecrypt({ key: pair.privateKeyPem, ...oaep }, ciphertext)).toEqual(message);
      const fromJwk = createPrivateKey({ key: pair.privateJwk as never, format: 'jwk' });
      expect(privateDecrypt({ key: fromJwk, ...oaep }, ciphertext)).toEqual(message);
      const viaPublicJwk = publicEncrypt({ key: createPublicKey({ key: pair.publicJwk as never, format: 'jwk' }), ...oaep }, message);
      expect(privateDecrypt({ key: pair.privateKeyPem, ...oaep }, viaPublicJwk)).toEqual(message);
    });

    test('uses rsaKeySize', async () => {
      const { keys } = await apps.create({ rsaKeySize: 3072 });
      const pair = await keys.generateKeyPair();
      expect(createPublicKey(pair.publicKeyPem).asymmetricKeyDetails!.modulusLength).toBe(3072);
      expect(createPrivateKey(pair.privateKeyPem).asymmetricKeyDetails!.modulusLength).toBe(3072);
    });

    test('makes a different key pair every call', async () => {
      const { keys } = await apps.create();
      const [a, b] = await Promise.all([keys.generateKeyPair(), keys.generateKeyPair()]);
      expect(a.keyId).not.toBe(b.keyId);
      expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
    });

    test('enableAsymmetric: false makes it an EncryptionConfigError', async () => {
      const { keys } = await apps.create({ enableAsymmetric: false });
      const error = await keys.generateKeyPair().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EncryptionConfigError);
      expect((error as Error).message).toBe(MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric'));
    });
  });
});
