/**
 * `nestjs-encryption/postgres`: a key store in PostgreSQL. Needs the optional peer `pg`; kept out of the
 * main entry point so that apps without it can still import `nestjs-encryption`.
 */
export { PostgresKeyStore } from './postgres-key.store.js';
export type {
  PostgresKeyStoreOptions,
  PostgresKeyStoreConnectionStringOptions,
  PostgresKeyStorePoolOptions,
} from './postgres-key.store.js';
