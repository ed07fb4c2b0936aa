import { createPublicKey, hkdfSync, randomBytes } from 'node:crypto';

import type { JWK } from 'jose';
import { calculateJwkThumbprint, compactDecrypt, CompactEncrypt, importJWK } from 'jose';

import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { unwrapKey, wrapKey } from './crypto/key-wrap.js';
import { EncryptionConfigError, MasterKeyMismatchError } from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { AuditEvent } from './interfaces/encryption-event.interface.js';
import type { StoredKeyPair, StoredKeyRing } from './interfaces/key-store.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterEach(() => apps.closeAll());

/** The in-memory store with real asynchronous latency, so concurrent writers genuinely interleave. */
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

/** Members of a private JWK that must never be stored or published in the clear. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

function expectNoPrivateMembers(ringJson: string): void {
  for (const member of PRIVATE_MEMBERS) expect(ringJson).not.toContain(`"${member}":`);
}

/** The private JWK a stored pair wraps, opened with the master key as a test can (nothing in the library returns it). */
function privateJwkOf(masterKey: Buffer, pair: StoredKeyPair): JWK {
  const secret = unwrapKey(masterKey, pair.kid, pair.wrappedPrivateKey);
  expect(secret).toBeDefined();
  return JSON.parse(secret!.toString('utf8')) as JWK;
}

const DISABLED = MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric');

describe('KeyManagerService key pairs', () => {
  describe('first boot', () => {
    test.each([
      [
        'RSA-OAEP-256',
        { alg: 'RSA-OAEP-256', rsaKeySize: 2048 },
        { kty: 'RSA' },
        ['kty', 'n', 'e', 'kid', 'alg', 'use'],
      ],
      [
        'ECDH-ES+A256KW-X25519',
        { alg: 'ECDH-ES+A256KW', crv: 'X25519' },
        { kty: 'OKP', crv: 'X25519' },
        ['kty', 'crv', 'x', 'kid', 'alg', 'use'],
      ],
      [
        'ECDH-ES+A256KW-P256',
        { alg: 'ECDH-ES+A256KW', crv: 'P-256' },
        { kty: 'EC', crv: 'P-256' },
        ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'],
      ],
    ] as const)(
      '%s: one active pair in the first ring write, private key only wrapped',
      async (asymmetricAlgorithm, fields, jwkFields, members) => {
        const keyStore = new InMemoryKeyStore();
        const masterKey = randomBytes(32);
        const { keys } = await apps.create({ keyStore, masterKey, asymmetricAlgorithm });

        const stored = (await keyStore.load())!;
        expect(stored.revision).toBe(1);
        expect(stored.keyPairs).toHaveLength(1);
        const [pair] = stored.keyPairs!;
        expect(pair).toMatchObject({ ...fields, state: 'active' });
        expect(Object.keys(pair.publicJwk).sort()).toEqual([...members].sort());
        expect(pair.publicJwk).toMatchObject({ ...jwkFields, kid: pair.kid, alg: fields.alg, use: 'enc' });
        expect(pair.kid).toBe(await calculateJwkThumbprint(pair.publicJwk as JWK, 'sha256'));
        expectNoPrivateMembers(JSON.stringify(stored));

        // The wrapped value is the matching private JWK, bound to its kid and the master key.
        const privateJwk = privateJwkOf(masterKey, pair);
        expect(typeof privateJwk.d).toBe('string');
        expect(createPublicKey({ key: privateJwk as never, format: 'jwk' }).export({ format: 'jwk' })).toMatchObject(
          Object.fromEntries(
            Object.entries(pair.publicJwk).filter(([member]) => !['kid', 'alg', 'use'].includes(member)),
          ),
        );
        expect(unwrapKey(randomBytes(32), pair.kid, pair.wrappedPrivateKey)).toBeUndefined();
        expect(unwrapKey(masterKey, `${pair.kid}x`, pair.wrappedPrivateKey)).toBeUndefined();

        expect(keys.publicJwks()).toEqual({ keys: [pair.publicJwk] });
        expect(keys.activePublicJwk()).toEqual(pair.publicJwk);
        expect(keys.listKeyPairs()).toEqual([
          expect.objectContaining({ kid: pair.kid, ...fields, state: 'active', createdAt: new Date(pair.createdAt) }),
        ]);
      },
    );

    test('a second instance on the same store adopts the pair instead of making one', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const first = await apps.create({ keyStore, masterKey });
      const second = await apps.create({ keyStore, masterKey });
      expect(second.keys.publicJwks()).toEqual(first.keys.publicJwks());
      expect((await keyStore.load())!.revision).toBe(1);
    });

    test('instances booting at the same moment on an empty store end with one pair', async () => {
      const keyStore = new SlowKeyStore();
      const masterKey = randomBytes(32);
      const booted = await Promise.all(
        [1, 2, 3].map(() => apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' })),
      );
      const stored = (await keyStore.load())!;
      expect(stored.keyPairs).toHaveLength(1);
      for (const app of booted) expect(app.keys.publicJwks()).toEqual({ keys: [stored.keyPairs![0].publicJwk] });
    });

    test('a ring made without asymmetric encryption gets one active pair at the next boot that enables it, once', async () => {
      const keyStore = new SlowKeyStore();
      const masterKey = randomBytes(32);
      const legacy = await apps.create({ keyStore, masterKey, enableAsymmetric: false });
      expect((await keyStore.load())!.keyPairs).toBeUndefined();
      await legacy.close();

      const booted = await Promise.all(
        [1, 2].map(() => apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-P256' })),
      );
      const stored = (await keyStore.load())!;
      expect(stored.revision).toBe(2);
      expect(stored.keyPairs).toHaveLength(1);
      expect(stored.keyPairs![0]).toMatchObject({ alg: 'ECDH-ES+A256KW', crv: 'P-256', state: 'active' });
      for (const app of booted) expect(app.keys.activePublicJwk().kid).toBe(stored.keyPairs![0].kid);
    });

    test('rotation audits the new pair by kid and algorithm, without key material', async () => {
      const keyStore = new InMemoryKeyStore();
      const { events, keys } = await apps.create({ keyStore, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      const audits: AuditEvent[] = [];
      events.subscribe((event) => event.type === 'audit' && audits.push(event));
      await keys.rotateKeyPair();
      const rotated = audits.find((event) => event.action === 'key-pair-activated')!;
      expect(rotated.keyId).toBe(keys.activePublicJwk().kid);
      expect(rotated.details).toEqual({ alg: 'ECDH-ES+A256KW', revision: 2 });
    });
  });

  describe('rotateKeyPair', () => {
    test('the new pair is active and first in the JWKS; the previous one stays published and decrypts', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const { keys } = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      const before = keys.activePublicJwk();
      const previousKey = keys.findPrivateKey(before.kid!);

      const rotated = await keys.rotateKeyPair();
      expect(rotated).toMatchObject({ alg: 'ECDH-ES+A256KW', crv: 'X25519', state: 'active' });
      expect(rotated.kid).not.toBe(before.kid);
      expect(keys.activePublicJwk().kid).toBe(rotated.kid);
      expect(keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([rotated.kid, before.kid]);
      expect(keys.listKeyPairs().map((pair) => [pair.kid, pair.state])).toEqual([
        [rotated.kid, 'active'],
        [before.kid, 'decrypt-only'],
      ]);
      // Still the same cached private key for the previous pair.
      expect(keys.findPrivateKey(before.kid!)).toBe(previousKey);

      const stored = (await keyStore.load())!;
      expect(stored.revision).toBe(2);
      expect(stored.keyPairs!.map((pair) => pair.state)).toEqual(['active', 'decrypt-only']);
      expectNoPrivateMembers(JSON.stringify(stored));
    });

    test('follows asymmetricAlgorithm for new pairs; older pairs keep theirs', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const first = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      const oldKid = first.keys.activePublicJwk().kid;
      await first.close();
      const second = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-P256' });
      expect(second.keys.activePublicJwk().kid).toBe(oldKid); // boot doesn't rotate
      await second.keys.rotateKeyPair();
      expect(second.keys.listKeyPairs().map((pair) => [pair.alg, pair.crv, pair.state])).toEqual([
        ['ECDH-ES+A256KW', 'P-256', 'active'],
        ['ECDH-ES+A256KW', 'X25519', 'decrypt-only'],
      ]);
    });

    test('calls in one process are queued, each making one pair', async () => {
      const { keys } = await apps.create({
        keyStore: new SlowKeyStore(),
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
      });
      const results = await Promise.all([keys.rotateKeyPair(), keys.rotateKeyPair(), keys.rotateKeyPair()]);
      expect(new Set(results.map((pair) => pair.kid)).size).toBe(3);
      expect(keys.listKeyPairs()).toHaveLength(4);
      expect(
        keys
          .listKeyPairs()
          .filter((pair) => pair.state === 'active')
          .map((pair) => pair.kid),
      ).toEqual([results[2].kid]);
    });

    test('instances rotating at the same moment through a shared store make one new pair, which all adopt', async () => {
      const keyStore = new SlowKeyStore();
      const masterKey = randomBytes(32);
      const options = { keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' } as const;
      const instances = [await apps.create(options), await apps.create(options), await apps.create(options)];
      const results = await Promise.all(instances.map((app) => app.keys.rotateKeyPair()));

      expect(new Set(results.map((pair) => pair.kid)).size).toBe(1);
      const stored = (await keyStore.load())!;
      expect(stored.keyPairs).toHaveLength(2);
      expect(stored.keyPairs![0]).toMatchObject({ kid: results[0].kid, state: 'active' });
      for (const app of instances) expect(app.keys.activePublicJwk().kid).toBe(results[0].kid);
    });

    test('keyRetention retires older pairs: out of the JWKS, no private key', async () => {
      const { keys } = await apps.create({
        keyRetention: { maxPreviousKeys: 1 },
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
      });
      const first = keys.activePublicJwk().kid!;
      const second = (await keys.rotateKeyPair()).kid;
      const third = (await keys.rotateKeyPair()).kid;
      expect(keys.listKeyPairs().map((pair) => [pair.kid, pair.state])).toEqual([
        [third, 'active'],
        [second, 'decrypt-only'],
        [first, 'retired'],
      ]);
      expect(keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([third, second]);
      expect(keys.findPrivateKey(first)).toBeUndefined();
      expect(keys.findPrivateKey(second)).toBeDefined();
    });
  });

  describe('findPrivateKey', () => {
    test('unwraps lazily, caches, and decrypts what jose encrypts to the published key', async () => {
      const { keys } = await apps.create({ asymmetricAlgorithm: 'ECDH-ES+A256KW-P256' });
      const jwk = keys.activePublicJwk();
      const privateKey = keys.findPrivateKey(jwk.kid!)!;
      expect(privateKey.type).toBe('private');
      expect(keys.findPrivateKey(jwk.kid!)).toBe(privateKey);

      const token = await new CompactEncrypt(Buffer.from('to the ring'))
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwk.kid })
        .encrypt(await importJWK(jwk, 'ECDH-ES+A256KW'));
      expect(Buffer.from((await compactDecrypt(token, privateKey)).plaintext).toString()).toBe('to the ring');
    });

    test('an unknown kid is undefined', async () => {
      const { keys } = await apps.create({ asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      expect(keys.findPrivateKey('no-such-kid')).toBeUndefined();
    });

    test('a wrapped private key altered in the store is a MasterKeyMismatchError, not a silent failure', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const first = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      await first.close();
      const ring = (await keyStore.load())!;
      const [pair] = ring.keyPairs!;
      // A value wrapped for another kid: the kid AAD makes it refuse to move.
      const moved = wrapKey(masterKey, 'another-kid', unwrapKey(masterKey, pair.kid, pair.wrappedPrivateKey)!);
      await keyStore.save({ ...ring, revision: 2, keyPairs: [{ ...pair, wrappedPrivateKey: moved }] }, 1);
      const second = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      expect(() => second.keys.findPrivateKey(pair.kid)).toThrow(MasterKeyMismatchError);
    });
  });

  describe('every ring write keeps the key pairs', () => {
    test('rotate (staged, then promoted), retire, restore and destroy of data keys', async () => {
      const keyStore = new InMemoryKeyStore();
      const { keys } = await apps.create({
        keyStore,
        keyPropagation: { delayMs: 0 },
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
      });
      await keys.rotateKeyPair();
      const pairs = (await keyStore.load())!.keyPairs;
      expect(pairs).toHaveLength(2);

      const first = keys.activeKey.id;
      await keys.rotate();
      expect((await keyStore.load())!.keyPairs).toEqual(pairs);
      await keys.retireKey(first);
      expect((await keyStore.load())!.keyPairs).toEqual(pairs);
      await keys.restoreKey(first);
      expect((await keyStore.load())!.keyPairs).toEqual(pairs);
      await keys.destroyKey(first);
      const stored = (await keyStore.load())!;
      expect(stored.revision).toBeGreaterThanOrEqual(7);
      expect(stored.keyPairs).toEqual(pairs);
    });

    test('rewrapMasterKey re-wraps the private keys too, in the same write', async () => {
      const keyStore = new InMemoryKeyStore();
      const oldMaster = randomBytes(32);
      const newMaster = randomBytes(32);
      const { keys } = await apps.create({
        keyStore,
        masterKey: oldMaster,
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
      });
      await keys.rotateKeyPair();
      const before = (await keyStore.load())!;
      const privateJwks = before.keyPairs!.map((pair) => privateJwkOf(oldMaster, pair));

      await keys.rewrapMasterKey(newMaster);
      const after = (await keyStore.load())!;
      expect(after.revision).toBe(before.revision + 1);
      expect(after.keyPairs!.map(({ wrappedPrivateKey: _wrapped, ...rest }) => rest)).toEqual(
        before.keyPairs!.map(({ wrappedPrivateKey: _wrapped, ...rest }) => rest),
      );
      after.keyPairs!.forEach((pair, index) => {
        expect(pair.wrappedPrivateKey).not.toBe(before.keyPairs![index].wrappedPrivateKey);
        expect(unwrapKey(oldMaster, pair.kid, pair.wrappedPrivateKey)).toBeUndefined();
        expect(privateJwkOf(newMaster, pair)).toEqual(privateJwks[index]);
      });
      expectNoPrivateMembers(JSON.stringify(after));

      // An instance restarted with the new master key reads both pairs.
      const restarted = await apps.create({
        keyStore,
        masterKey: newMaster,
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
      });
      for (const pair of after.keyPairs!) expect(restarted.keys.findPrivateKey(pair.kid)).toBeDefined();
    });
  });

  describe('enableAsymmetric: false', () => {
    test('no key pair is made, and every key pair API is an EncryptionConfigError naming the option', async () => {
      const keyStore = new InMemoryKeyStore();
      const { keys } = await apps.create({ keyStore, enableAsymmetric: false });
      expect((await keyStore.load())!.keyPairs).toBeUndefined();
      expect(keys.listKeyPairs()).toEqual([]);
      for (const call of [() => keys.publicJwks(), () => keys.activePublicJwk(), () => keys.findPrivateKey('kid')]) {
        expect(call).toThrow(EncryptionConfigError);
        expect(call).toThrow(DISABLED);
      }
      const rotation = keys.rotateKeyPair();
      await expect(rotation).rejects.toThrow(EncryptionConfigError);
      await expect(rotation).rejects.toThrow(DISABLED);
    });

    test("an instance with it disabled keeps other instances' key pairs through its own writes", async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const enabled = await apps.create({ keyStore, masterKey, asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' });
      const pairs = (await keyStore.load())!.keyPairs;
      const disabled = await apps.create({
        keyStore,
        masterKey,
        enableAsymmetric: false,
        keyPropagation: { delayMs: 0 },
      });
      await disabled.keys.rotate();
      await disabled.keys.rewrapMasterKey(masterKey);
      expect((await keyStore.load())!.keyPairs!.map(({ wrappedPrivateKey: _wrapped, ...rest }) => rest)).toEqual(
        pairs!.map(({ wrappedPrivateKey: _wrapped, ...rest }) => rest),
      );
      await enabled.keys.reload();
      expect(enabled.keys.findPrivateKey(pairs![0].kid)).toBeDefined();
    });
  });

  describe('exportFernetKeys', () => {
    test('the HKDF-derived Fernet key of each usable ring key, active first, audited without key material', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const { keys, events } = await apps.create({
        keyStore,
        masterKey,
        keyPropagation: { delayMs: 0 },
        enableAsymmetric: false,
      });
      await keys.rotate();
      await keys.rotate();
      await keys.retireKey(keys.listKeys()[2].id);
      const audits: AuditEvent[] = [];
      events.subscribe((event) => event.type === 'audit' && audits.push(event));

      const exported = keys.exportFernetKeys();
      const stored = (await keyStore.load())!;
      const usable = stored.keys.filter((key) => key.state === 'active' || key.state === 'decrypt-only');
      const expected = usable
        .sort((a, b) => (a.state === 'active' ? -1 : b.state === 'active' ? 1 : b.version - a.version))
        .map((key) => {
          const secret = unwrapKey(masterKey, key.id, key.wrappedKey!)!;
          const fernetKey = Buffer.from(hkdfSync('sha256', secret, Buffer.from('nestjs-encryption/v1'), 'fernet', 32));
          return fernetKey.toString('base64url') + '=';
        });
      expect(exported).toEqual(expected);
      expect(exported).toHaveLength(2);
      for (const key of exported) expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/);

      expect(audits).toEqual([
        expect.objectContaining({
          action: 'fernet-keys-exported',
          keyId: keys.activeKey.id,
          details: { keys: 2, revision: stored.revision },
        }),
      ]);
      expect(JSON.stringify(audits)).not.toContain(exported[0].slice(0, 20));
    });
  });
});
