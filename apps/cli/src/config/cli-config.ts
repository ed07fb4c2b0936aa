import { hostname } from 'node:os';

import type { EncryptionModuleOptions, KeyStore } from 'nestjs-encryption';

import { configError } from '../cli.errors.js';

export type KeyStoreKind = 'file' | 'memory' | 'postgres' | 'redis';
const KINDS: readonly KeyStoreKind[] = ['file', 'memory', 'postgres', 'redis'];

/**
 * What the CLI reads from the environment: the same variables, with the same defaults, as the demo
 * application (`apps/demo/src/config/demo.config.ts`), so one environment serves both. Unlike the demo,
 * the CLI never makes a development master key: a persistent store needs MASTER_KEY or
 * MASTER_KEY_PASSPHRASE.
 */
export interface CliConfig {
  keyStore: KeyStoreKind;
  /** `KEY_STORE_PATH`, for the file store. @default '.data/keyring.json' */
  keyStorePath: string;
  databaseUrl?: string;
  redisUrl?: string;
  masterKey?: string;
  masterKeyPassphrase?: string;
}

export const ENVIRONMENT_HELP = `Environment (the same variables as the application):
  KEY_STORE              file (default) | postgres | redis | memory
  KEY_STORE_PATH         file store location (default .data/keyring.json)
  DATABASE_URL           PostgreSQL key store (and default --connection of reencrypt)
  REDIS_URL              Redis key store
  MASTER_KEY             master key, 32 bytes base64 (or MASTER_KEY_PASSPHRASE)
  MASTER_KEY_PASSPHRASE  passphrase the master key is derived from
  NO_COLOR               no colours even on a terminal`;

export function loadCliConfig(env: NodeJS.ProcessEnv): CliConfig {
  const keyStore = (env.KEY_STORE || 'file') as KeyStoreKind;
  if (!KINDS.includes(keyStore)) throw configError(`KEY_STORE must be one of ${KINDS.join(', ')} (got "${keyStore}")`);
  const config: CliConfig = {
    keyStore,
    keyStorePath: env.KEY_STORE_PATH || '.data/keyring.json',
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    masterKey: env.MASTER_KEY || undefined,
    masterKeyPassphrase: env.MASTER_KEY_PASSPHRASE || undefined,
  };
  if (keyStore === 'postgres' && !config.databaseUrl) throw configError('KEY_STORE=postgres needs DATABASE_URL');
  if (keyStore === 'redis' && !config.redisUrl) throw configError('KEY_STORE=redis needs REDIS_URL');
  if (keyStore !== 'memory' && !config.masterKey && !config.masterKeyPassphrase) {
    throw configError(
      `KEY_STORE=${keyStore} needs MASTER_KEY (32 bytes, base64) or MASTER_KEY_PASSPHRASE; the CLI never makes one. ` +
        'For the demo\'s development key: MASTER_KEY="$(cat .data/dev-master-key)"',
    );
  }
  return config;
}

/** Where the ring lives, for messages: never a password or other credential. */
export function describeKeyStore(config: CliConfig): string {
  switch (config.keyStore) {
    case 'memory':
      return 'in-memory store';
    case 'postgres':
      return `PostgreSQL ${redactUrl(config.databaseUrl!)}`;
    case 'redis':
      return `Redis ${redactUrl(config.redisUrl!)}`;
    default:
      return `file ${config.keyStorePath}`;
  }
}

/** `scheme://user@host:port/path` without password or query; an unparsable value is not echoed at all. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : '';
    return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(connection string)';
  }
}

/** The configured store, wrapped so the CLI acts as an operator rather than as one more instance. */
export async function createKeyStore(config: CliConfig): Promise<KeyStore> {
  // Loaded here, not at the top: help and usage errors don't need the library.
  const { FileKeyStore, InMemoryKeyStore } = await import('nestjs-encryption');
  const { OperatorKeyStore } = await import('./operator-key-store.js');
  let store: KeyStore;
  switch (config.keyStore) {
    case 'memory':
      return new InMemoryKeyStore();
    case 'postgres': {
      const { PostgresKeyStore } = await import('nestjs-encryption/postgres');
      store = new PostgresKeyStore({
        connectionString: config.databaseUrl!,
        poolConfig: { max: 2, connectionTimeoutMillis: 5_000 },
      });
      break;
    }
    case 'redis': {
      const { RedisKeyStore } = await import('nestjs-encryption/redis');
      store = new RedisKeyStore({ url: config.redisUrl! });
      break;
    }
    default:
      store = new FileKeyStore(config.keyStorePath);
  }
  return new OperatorKeyStore(store, describeKeyStore(config));
}

/** Module options for `EncryptionModule.forRootAsync`, from the configuration and the command's needs. */
export function encryptionOptions(
  config: CliConfig,
  keyStore: KeyStore,
  extra: EncryptionModuleOptions = {},
): EncryptionModuleOptions {
  return {
    masterKey: config.masterKey,
    masterKeyPassphrase: config.masterKey ? undefined : config.masterKeyPassphrase,
    keyStore,
    instanceId: `cli-${hostname()}-${process.pid}`,
    // Booting with asymmetric encryption on adds a key pair to a ring that has none: an operator's
    // command must not change the ring as a side effect, so only `keys export-public` turns it on.
    enableAsymmetric: false,
    ...extra,
  };
}
