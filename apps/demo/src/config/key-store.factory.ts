import type { KeyStore } from 'nestjs-encryption';
import { FileKeyStore, InMemoryKeyStore } from 'nestjs-encryption';

import type { DemoConfig } from './demo.config.js';

/** The key store the configuration names; PostgreSQL and Redis are loaded only when chosen. */
export async function createKeyStore(config: DemoConfig): Promise<KeyStore> {
  switch (config.keyStore) {
    case 'memory':
      return new InMemoryKeyStore();
    case 'postgres': {
      if (!config.databaseUrl) throw new Error('KEY_STORE=postgres needs DATABASE_URL');
      const { PostgresKeyStore } = await import('nestjs-encryption/postgres');
      return new PostgresKeyStore({ connectionString: config.databaseUrl });
    }
    case 'redis': {
      if (!config.redisUrl) throw new Error('KEY_STORE=redis needs REDIS_URL');
      const { RedisKeyStore } = await import('nestjs-encryption/redis');
      return new RedisKeyStore({ url: config.redisUrl });
    }
    default:
      return new FileKeyStore(config.keyStorePath);
  }
}
