/** Injection token of the demo's `DemoConfig`. */
export const DEMO_CONFIG = 'DEMO:CONFIG';

export type KeyStoreKind = 'file' | 'memory' | 'postgres' | 'redis';

/** Everything the demo reads from the environment, with development defaults. */
export interface DemoConfig {
  port: number;
  adapter: 'express' | 'fastify';
  production: boolean;
  /** Bearer token for the admin endpoints. */
  adminToken: string;
  /** Where keys live: a local file by default, so the demo needs no external service. */
  keyStore: KeyStoreKind;
  keyStorePath: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Base64 master key, or a passphrase; in development a local key file is made when neither is set. */
  masterKey?: string;
  masterKeyPassphrase?: string;
  devMasterKeyPath: string;
  /** Milliseconds; how old the active key may get before scheduled rotation replaces it. */
  keyRotationInterval?: number;
  rotationCheckIntervalMs?: number;
  /** How many previous keys and key pairs stay usable after a rotation; older ones are retired. */
  keyRetentionMaxPreviousKeys?: number;
  /** Where `POST /files` keeps uploads, encrypted. */
  filesDir: string;
  /** Worker threads for large payloads (`workerPool.size`); the library's default when unset. */
  workerPoolSize?: number;
  /** Smallest payload in bytes sent to a worker (`workerPool.threshold`); the library's default when unset. */
  workerPoolThreshold?: number;
}

export const DEV_ADMIN_TOKEN = 'dev-admin-token';

export function loadDemoConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const production = env.NODE_ENV === 'production';
  const adminToken = env.DEMO_ADMIN_TOKEN ?? (production ? undefined : DEV_ADMIN_TOKEN);
  if (!adminToken) throw new Error('DEMO_ADMIN_TOKEN must be set when NODE_ENV=production');
  const adapter = env.DEMO_ADAPTER ?? 'express';
  if (adapter !== 'express' && adapter !== 'fastify') throw new Error('DEMO_ADAPTER must be express or fastify');
  const keyStore = (env.KEY_STORE ?? 'file') as KeyStoreKind;
  if (!['file', 'memory', 'postgres', 'redis'].includes(keyStore)) {
    throw new Error('KEY_STORE must be file, memory, postgres or redis');
  }
  return {
    port: Number(env.PORT ?? 3000),
    adapter,
    production,
    adminToken,
    keyStore,
    keyStorePath: env.KEY_STORE_PATH ?? '.data/keyring.json',
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    masterKey: env.MASTER_KEY,
    masterKeyPassphrase: env.MASTER_KEY_PASSPHRASE,
    devMasterKeyPath: env.DEV_MASTER_KEY_PATH ?? '.data/dev-master-key',
    keyRotationInterval: optionalNumber(env.KEY_ROTATION_INTERVAL_MS),
    rotationCheckIntervalMs: optionalNumber(env.ROTATION_CHECK_INTERVAL_MS),
    keyRetentionMaxPreviousKeys: optionalNumber(env.KEY_RETENTION_MAX_PREVIOUS_KEYS),
    filesDir: env.FILES_DIR ?? '.data/files',
    workerPoolSize: optionalNumber(env.WORKER_POOL_SIZE),
    workerPoolThreshold: optionalNumber(env.WORKER_POOL_THRESHOLD),
  };
}

function optionalNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new Error(`Expected a number, got "${value}"`);
  return number;
}
