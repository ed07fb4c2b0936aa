import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';

import { plainToInstance } from 'class-transformer';
import type { ValidationError } from 'class-validator';
import { getMetadataStorage, validateSync } from 'class-validator';

import { fromBase64 } from '../crypto/base64.js';
import { EncryptionConfigError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type {
  EncryptionClock,
  EncryptionModuleOptions,
  ResolvedEncryptionOptions,
} from '../interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from '../stores/in-memory-key.store.js';
import { EncryptionOptionsSchema } from './encryption-options.schema.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const MASTER_KEY_SIZE = 32;

export const SYSTEM_CLOCK: EncryptionClock = Object.freeze({ now: () => Date.now() });

export const DEFAULT_ENCRYPTION_OPTIONS = {
  keySize: 32,
  saltSize: 16,
  iterations: 600_000,
  algorithm: 'AES-256-GCM',
  keyRotationInterval: 30 * DAY_MS,
  enableCompression: true,
  compressionThreshold: 1024,
  compressionAlgorithm: 'gzip',
  maxDecompressedSize: 64 * 1024 * 1024,
  enableKeyDerivation: true,
  enableAsymmetric: true,
  asymmetricAlgorithm: 'RSA-OAEP-256',
  rsaKeySize: 2048,
  paddingScheme: 'PKCS7',
  keyRetention: {},
  scheduledRotation: { enabled: true, checkIntervalMs: 60_000 },
  keyPropagation: { delayMs: 10_000, heartbeatIntervalMs: 5_000 },
  maxEncryptionsPerKey: 2 ** 30,
  unknownKeyReloadIntervalMs: 1_000,
  decryptionFailureBurst: { threshold: 20, windowMs: 10_000 },
  workerPool: { size: availableParallelism(), threshold: 4 * 1024 * 1024 },
} as const satisfies EncryptionModuleOptions;

/**
 * Applies defaults and validates, for both `forRoot` and `forRootAsync`. Throws one
 * `EncryptionConfigError` that names every bad field and what it allows.
 */
export function resolveEncryptionOptions(options: EncryptionModuleOptions = {}): ResolvedEncryptionOptions {
  const { masterKey, keyStore, clock, ...scalars } = options;
  const merged = {
    ...DEFAULT_ENCRYPTION_OPTIONS,
    ...withoutUndefined(scalars),
    scheduledRotation: withDefaults(DEFAULT_ENCRYPTION_OPTIONS.scheduledRotation, scalars.scheduledRotation),
    keyPropagation: withDefaults(DEFAULT_ENCRYPTION_OPTIONS.keyPropagation, scalars.keyPropagation),
    decryptionFailureBurst: withDefaults(DEFAULT_ENCRYPTION_OPTIONS.decryptionFailureBurst, scalars.decryptionFailureBurst),
    workerPool: withDefaults(DEFAULT_ENCRYPTION_OPTIONS.workerPool, scalars.workerPool),
    instanceId: scalars.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
  };
  const problems = validateSync(plainToInstance(EncryptionOptionsSchema, merged), {
    forbidUnknownValues: true,
    whitelist: true,
    forbidNonWhitelisted: true,
  }).flatMap((error) => describe(error));

  const resolvedMasterKey = resolveMasterKey(masterKey, problems);
  if (masterKey !== undefined && options.masterKeyPassphrase !== undefined) {
    problems.push('masterKey and masterKeyPassphrase are alternatives: give one of them');
  }
  if (keyStore !== undefined && (typeof keyStore?.load !== 'function' || typeof keyStore?.save !== 'function')) {
    problems.push('keyStore must implement KeyStore (load and save)');
  }
  if (clock !== undefined && typeof clock?.now !== 'function') {
    problems.push('clock must have a now() method returning epoch milliseconds');
  }
  if (problems.length) throw new EncryptionConfigError(MESSAGES.INVALID_CONFIG(problems));

  return {
    ...(merged as Omit<ResolvedEncryptionOptions, 'masterKey' | 'keyStore'>),
    masterKey: resolvedMasterKey,
    keyStore: keyStore ?? new InMemoryKeyStore(),
    clock: clock ?? SYSTEM_CLOCK,
  };
}

function resolveMasterKey(masterKey: Buffer | string | undefined, problems: string[]): Buffer | undefined {
  if (masterKey === undefined) return undefined;
  const bytes = typeof masterKey === 'string' ? fromBase64(masterKey) : Buffer.isBuffer(masterKey) ? masterKey : undefined;
  if (bytes?.length !== MASTER_KEY_SIZE) {
    problems.push(`masterKey must be ${MASTER_KEY_SIZE} bytes, as a Buffer or base64 text`);
    return Buffer.alloc(0);
  }
  return Buffer.from(bytes);
}

function describe(error: ValidationError, parent = ''): string[] {
  const path = parent ? `${parent}.${error.property}` : error.property;
  const own = Object.entries(error.constraints ?? {}).map(([constraint, message]) =>
    constraint === 'whitelistValidation'
      ? `${path} is not an option (known: ${knownOptions(error.target, parent).join(', ')})`
      : message.startsWith(error.property)
        ? `${parent ? parent + '.' : ''}${message}`
        : `${path}: ${message}`,
  );
  return [...own, ...(error.children ?? []).flatMap((child) => describe(child, path))];
}

/** Options taken out before schema validation, so the schema doesn't list them. */
const OPTIONS_OUTSIDE_SCHEMA = ['masterKey', 'keyStore', 'clock'];

/** The option names a (nested) schema object accepts, to suggest them for a misspelt one. */
function knownOptions(target: object | undefined, parent: string): string[] {
  const names = target
    ? getMetadataStorage()
        .getTargetValidationMetadatas(target.constructor, '', true, false)
        .map((metadata) => metadata.propertyName)
    : [];
  return [...new Set([...names, ...(parent ? [] : OPTIONS_OUTSIDE_SCHEMA)])];
}

/** Fills a nested options object's missing fields; anything that isn't an object is left for validation to reject. */
function withDefaults<T extends object>(defaults: T, value: unknown): unknown {
  if (value === undefined) return { ...defaults };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return { ...defaults, ...withoutUndefined(value) };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
