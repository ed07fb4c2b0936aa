/**
 * `nestjs-encryption/redis`: a key store in Redis. Needs the optional peer `ioredis`; kept out of the
 * main entry point so that apps without it can still import `nestjs-encryption`.
 */
export { RedisKeyStore } from './redis-key.store.js';
export type { RedisKeyStoreOptions, RedisKeyStoreUrlOptions, RedisKeyStoreClientOptions } from './redis-key.store.js';
