import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import type { JWK } from 'jose';
import { CompactEncrypt, decodeProtectedHeader, importJWK } from 'jose';
import type { KeyStore, StoredKeyRing } from 'nestjs-encryption';
import { FileKeyStore, InMemoryKeyStore } from 'nestjs-encryption';
import { PostgresKeyStore } from 'nestjs-encryption/postgres';
import { RedisKeyStore } from 'nestjs-encryption/redis';
import pg from 'pg';

import { encryptionTestApps } from './support/encryption-test-app.js';
import { randomNamespace } from './support/key-store-contract.js';
import { deleteKeysByPrefix, dropSchema, POSTGRES_URL, REDIS_URL } from './support/key-store-services.js';

/**
 * Key pairs persisted through every key store: the ring's `keyPairs` round-trip, private keys exist
 * only wrapped (checked in what each backend actually holds), and instances sharing a store decrypt
 * each other's JWEs across rotation and master key rewrap.
 */

/** Private JWK members; none may appear in a stored ring. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

interface Backend {
  name: string;
  /** A new connection to the namespace's store (the same data for the same namespace). */
  connect(namespace: string): KeyStore;
  /** The ring exactly as the backend holds it, as text. */
  raw(namespace: string): Promise<string>;
  cleanup(namespace: string): Promise<void>;
}

const root = mkdtempSync(join(tmpdir(), 'nestjs-encryption-key-pairs-'));
const memory = new Map<string, InMemoryKeyStore>();
const redis = new Redis(REDIS_URL);
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await redis.quit();
});

const BACKENDS: Backend[] = [
  {
    name: 'InMemoryKeyStore',
    connect: (namespace) => {
      if (!memory.has(namespace)) memory.set(namespace, new InMemoryKeyStore());
      return memory.get(namespace)!;
    },
    raw: async (namespace) => JSON.stringify(await memory.get(namespace)!.load()),
    cleanup: async (namespace) => void memory.delete(namespace),
  },
  {
    name: 'FileKeyStore',
    connect: (namespace) => new FileKeyStore({ path: join(root, namespace, 'key-ring.json'), watchIntervalMs: 100 }),
    raw: async (namespace) => readFileSync(join(root, namespace, 'key-ring.json'), 'utf8'),
    cleanup: async (namespace) => rmSync(join(root, namespace), { recursive: true, force: true }),
  },
  {
    name: 'PostgresKeyStore',
    connect: (namespace) => new PostgresKeyStore({ connectionString: POSTGRES_URL, schema: namespace }),
    raw: async (namespace) => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const table = `${pg.escapeIdentifier(namespace)}.${pg.escapeIdentifier('nestjs_encryption_key_ring')}`;
        const { rows } = await client.query<{ ring: string }>(`SELECT ring::text AS ring FROM ${table}`);
        expect(rows).toHaveLength(1);
        return rows[0].ring;
      } finally {
        await client.end();
      }
    },
    cleanup: (namespace) => dropSchema(namespace),
  },
  {
    name: 'RedisKeyStore',
    connect: (namespace) => new RedisKeyStore({ url: REDIS_URL, keyPrefix: `${namespace}:` }),
    raw: async (namespace) => (await redis.hget(`${namespace}:ring`, 'ring'))!,
    cleanup: async (namespace) => {
      await deleteKeysByPrefix(redis, `${namespace}:`);
    },
  },
];

/** The ring as a new connection reads it; the connection is closed again (an open pool would keep Jest alive). */
async function loadFresh(backend: Backend, namespace: string): Promise<StoredKeyRing> {
  const store = backend.connect(namespace);
  try {
    return (await store.load())!;
  } finally {
    await store.close?.();
  }
}

async function joseEncrypt(jwk: JWK, text: string): Promise<string> {
  return new CompactEncrypt(Buffer.from(text))
    .setProtectedHeader({ alg: jwk.alg!, enc: 'A256GCM', kid: jwk.kid, cty: 'text/plain' })
    .encrypt(await importJWK(jwk, jwk.alg));
}

describe.each(BACKENDS)('key pairs through $name', (backend) => {
  const apps = encryptionTestApps();
  let namespace: string;
  beforeEach(() => {
    namespace = randomNamespace();
  });
  afterEach(async () => {
    await apps.closeAll();
    await backend.cleanup(namespace);
  });

  const boot = (masterKey: Buffer) =>
    apps.create({
      keyStore: backend.connect(namespace),
      masterKey,
      asymmetricAlgorithm: 'ECDH-ES+A256KW-P256',
      unknownKeyReloadIntervalMs: 0,
    });

  test('round-trips keyPairs with private keys only wrapped; instances share, rotate and rewrap them', async () => {
    const masterKey = randomBytes(32);
    const a = await boot(masterKey);
    const b = await boot(masterKey);

    // What the backend holds: the public JWK and the wrapped private key, never a private member.
    const first = a.keys.activePublicJwk();
    let raw = await backend.raw(namespace);
    expect(raw).toContain(first.kid!);
    expect(raw).toContain('wrappedPrivateKey');
    for (const member of PRIVATE_MEMBERS) expect(raw).not.toMatch(new RegExp(`"${member}"\\s*:`));
    const stored = await loadFresh(backend, namespace);
    expect(stored.keyPairs).toHaveLength(1);
    expect(stored.keyPairs![0]).toMatchObject({ kid: first.kid, alg: 'ECDH-ES+A256KW', crv: 'P-256', state: 'active' });

    // A second instance loaded the same pair from the store.
    expect(b.keys.publicJwks()).toEqual(a.keys.publicJwks());
    expect(await b.encryption.decrypt(await a.encryption.encryptForPublicKey({ n: 1 }))).toEqual({ n: 1 });
    expect(await a.encryption.decrypt(await joseEncrypt(b.keys.activePublicJwk(), 'from jose'))).toBe('from jose');

    // Rotation on A: B decrypts a JWE to the new pair (watch or unknown-kid reload) and to the old one.
    const beforeRotation = await joseEncrypt(first, 'to the first pair');
    const second = await a.keys.rotateKeyPair();
    const toSecond = await a.encryption.encryptForPublicKey('to the second pair');
    expect(decodeProtectedHeader(toSecond).kid).toBe(second.kid);
    expect(await b.encryption.decrypt(toSecond)).toBe('to the second pair');
    expect(await b.encryption.decrypt(beforeRotation)).toBe('to the first pair');
    expect(b.keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([second.kid, first.kid]);

    // Rewrap: the backend now holds other wrapped values, and only the new master key opens them.
    const wrappedBefore = (await loadFresh(backend, namespace)).keyPairs!.map((pair) => pair.wrappedPrivateKey);
    const newMasterKey = randomBytes(32);
    await a.keys.rewrapMasterKey(newMasterKey);
    const rewrapped = await loadFresh(backend, namespace);
    expect(rewrapped.keyPairs!.map((pair) => pair.kid)).toEqual([second.kid, first.kid]);
    rewrapped.keyPairs!.forEach((pair, i) => expect(pair.wrappedPrivateKey).not.toBe(wrappedBefore[i]));
    raw = await backend.raw(namespace);
    for (const member of PRIVATE_MEMBERS) expect(raw).not.toMatch(new RegExp(`"${member}"\\s*:`));

    const restarted = await boot(newMasterKey);
    expect(await restarted.encryption.decrypt(beforeRotation)).toBe('to the first pair');
    expect(await restarted.encryption.decrypt(toSecond)).toBe('to the second pair');
  });
});
