import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { FileKeyStore, InMemoryKeyStore } from 'nestjs-encryption';
import { PostgresKeyStore } from 'nestjs-encryption/postgres';
import { RedisKeyStore } from 'nestjs-encryption/redis';

import { describeKeyStoreContract } from './support/key-store-contract.js';
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
