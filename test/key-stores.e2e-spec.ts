import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { FileKeyStore, InMemoryKeyStore } from 'nestjs-encryption';
import { PostgresKeyStore } from 'nestjs-encryption/postgres';
import { RedisKeyStore } from 'nestjs-encryption/redis';

import { encryptionTestApps } from './support/encryption-test-app.js';
import { describeKeyStoreContract, eventually, randomNamespace } from './support/key-store-contract.js';
import { deleteKeysByPrefix, dropSchema, POSTGRES_URL, REDIS_URL } from './support/key-store-services.js';

/** Every KeyStore behaves the same, each against its real backing store. */

const memory = new Map<string, InMemoryKeyStore>();
describeKeyStoreContract(
  'InMemoryKeyStore',
  (namespace) => {
    if (!memory.has(namespace)) memory.set(namespace, new InMemoryKeyStore());
    return memory.get(namespace)!;
  },
  (namespace) => void memory.delete(namespace),
);

const root = mkdtempSync(join(tmpdir(), 'nestjs-encryption-file-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
describeKeyStoreContract(
  'FileKeyStore',
  (namespace) => new FileKeyStore({ path: join(root, namespace, 'key-ring.json'), watchIntervalMs: 200 }),
  (namespace) => rmSync(join(root, namespace), { recursive: true, force: true }),
);

describeKeyStoreContract(
  'PostgresKeyStore',
  (namespace) => new PostgresKeyStore({ connectionString: POSTGRES_URL, schema: namespace }),
  (namespace) => dropSchema(namespace),
);

const redis = new Redis(REDIS_URL);
afterAll(() => redis.quit());
describeKeyStoreContract(
  'RedisKeyStore',
  (namespace) => new RedisKeyStore({ url: REDIS_URL, keyPrefix: `${namespace}:` }),
  async (namespace) => {
    await deleteKeysByPrefix(redis, `${namespace}:`);
  },
);

/**
 * The stores under the real consumer: two application instances, each with its own connection to one
 * store, rotate together (staged key published, heard through `watch`, promoted once the other
 * instance's heartbeat shows it), share ciphertexts, and a restarted instance finds the ring again.
 */
describe.each([
  ['FileKeyStore', (ns: string) => new FileKeyStore({ path: join(root, ns, 'key-ring.json'), watchIntervalMs: 200 })],
  ['PostgresKeyStore', (ns: string) => new PostgresKeyStore({ connectionString: POSTGRES_URL, schema: ns })],
  ['RedisKeyStore', (ns: string) => new RedisKeyStore({ url: REDIS_URL, keyPrefix: `${ns}:` })],
] as const)('%s under KeyManagerService', (name, makeStore) => {
  const apps = encryptionTestApps();
  let namespace: string;

  beforeEach(() => {
    namespace = randomNamespace();
  });

  afterEach(async () => {
    await apps.closeAll();
    if (name === 'PostgresKeyStore') await dropSchema(namespace);
    if (name === 'RedisKeyStore') await deleteKeysByPrefix(redis, `${namespace}:`);
  });

  it('two instances rotate together through the store, share ciphertexts, and a restart finds the ring', async () => {
    const options = {
      masterKey: randomBytes(32),
      keyPropagation: { delayMs: 20_000, heartbeatIntervalMs: 200 },
      scheduledRotation: { enabled: false },
    };
    const a = await apps.create({ ...options, keyStore: makeStore(namespace) });
    const b = await apps.create({ ...options, keyStore: makeStore(namespace) });
    expect(b.keys.activeKey.id).toBe(a.keys.activeKey.id);
    const before = await a.encryption.encryptToString('before rotation');

    const started = Date.now();
    const rotated = await a.keys.rotate();
    // Promoted because B was heard to hold the staged key, not because the 20 s delay ran out.
    expect(Date.now() - started).toBeLessThan(10_000);
    await eventually(() => expect(b.keys.revision).toBe(a.keys.revision));
    expect(b.keys.activeKey.id).toBe(rotated.id);

    const after = await a.encryption.encryptToString('after rotation');
    await expect(b.encryption.decrypt(after)).resolves.toBe('after rotation');
    await expect(b.encryption.decrypt(before)).resolves.toBe('before rotation');
    await apps.closeAll();

    const usage = await (async () => {
      const store = makeStore(namespace);
      try {
        return await store.loadUsage();
      } finally {
        await store.close();
      }
    })();
    expect(usage[rotated.id]?.encryptions).toBeGreaterThanOrEqual(1);

    const restarted = await apps.create({ ...options, keyStore: makeStore(namespace) });
    expect(restarted.keys.activeKey.id).toBe(rotated.id);
    await expect(restarted.encryption.decrypt(before)).resolves.toBe('before rotation');
    await expect(restarted.encryption.decrypt(after)).resolves.toBe('after rotation');
  }, 30_000);
});
