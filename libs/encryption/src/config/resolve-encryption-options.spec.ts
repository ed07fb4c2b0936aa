import 'reflect-metadata';

import { randomBytes } from 'node:crypto';

import { EncryptionConfigError } from '../errors/encryption.errors.js';
import type { EncryptionModuleOptions } from '../interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from '../stores/in-memory-key.store.js';
import { DEFAULT_ENCRYPTION_OPTIONS, resolveEncryptionOptions } from './resolve-encryption-options.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function configErrorOf(options: unknown): EncryptionConfigError {
  try {
    resolveEncryptionOptions(options as EncryptionModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(EncryptionConfigError);
    return error as EncryptionConfigError;
  }
  throw new Error('expected an EncryptionConfigError, but the options were accepted');
}

describe('resolveEncryptionOptions', () => {
  describe('defaults', () => {
    // The documented defaults (README / option JSDoc), one by one so a change names the option.
    test.each([
      ['keySize', 32],
      ['saltSize', 16],
      ['iterations', 600_000],
      ['algorithm', 'AES-256-GCM'],
      ['keyRotationInterval', 30 * DAY_MS],
      ['enableCompression', true],
      ['compressionThreshold', 1024],
      ['compressionAlgorithm', 'gzip'],
      ['maxDecompressedSize', 64 * 1024 * 1024],
      ['enableKeyDerivation', true],
      ['enableAsymmetric', true],
      ['asymmetricAlgorithm', 'RSA-OAEP-256'],
      ['rsaKeySize', 2048],
      ['paddingScheme', 'PKCS7'],
      ['keyRetention', {}],
    ])('%s defaults to %p', (field, value) => {
      expect(resolveEncryptionOptions()[field as keyof ReturnType<typeof resolveEncryptionOptions>]).toEqual(value);
      expect(resolveEncryptionOptions({})[field as keyof ReturnType<typeof resolveEncryptionOptions>]).toEqual(value);
      expect(DEFAULT_ENCRYPTION_OPTIONS[field as keyof typeof DEFAULT_ENCRYPTION_OPTIONS]).toEqual(value);
    });

    test('keyRotationInterval is 30 days in milliseconds', () => {
      expect(resolveEncryptionOptions().keyRotationInterval).toBe(2_592_000_000);
    });

    test('the key store defaults to a new in-memory store for every module', () => {
      const a = resolveEncryptionOptions();
      const b = resolveEncryptionOptions();
      expect(a.keyStore).toBeInstanceOf(InMemoryKeyStore);
      expect(a.keyStore).not.toBe(b.keyStore);
    });

    test('undefined values mean "use the default"', () => {
      const resolved = resolveEncryptionOptions({ keySize: undefined, algorithm: undefined, enableCompression: undefined });
      expect(resolved).toMatchObject({ keySize: 32, algorithm: 'AES-256-GCM', enableCompression: true });
    });
  });

  describe('given values', () => {
    test('are kept', () => {
      const keyStore = new InMemoryKeyStore();
      const options: EncryptionModuleOptions = {
        keySize: 64,
        saltSize: 32,
        iterations: 1_000_000,
        algorithm: 'AES-256-CBC-HMAC-SHA256',
        keyRotationInterval: 7 * DAY_MS,
        enableCompression: false,
        compressionThreshold: 0,
        compressionAlgorithm: 'brotli',
        maxDecompressedSize: 1024,
        enableKeyDerivation: false,
        enableAsymmetric: false,
        rsaKeySize: 4096,
        paddingScheme: 'PKCS7',
        keyRetention: { maxPreviousKeys: 3, maxAgeMs: DAY_MS },
        keyStore,
      };
      const resolved = resolveEncryptionOptions(options);
      const { keyStore: _store, ...scalars } = options;
      expect(resolved).toMatchObject(scalars);
      expect(resolved.keyStore).toBe(keyStore);
    });

    test.each(['AES-256-GCM', 'ChaCha20-Poly1305', 'AES-256-CBC-HMAC-SHA256', 'fernet'] as const)('algorithm %s is accepted', (algorithm) => {
      expect(resolveEncryptionOptions({ algorithm }).algorithm).toBe(algorithm);
    });

    test.each(['RSA-OAEP-256', 'ECDH-ES+A256KW-X25519', 'ECDH-ES+A256KW-P256'] as const)('asymmetricAlgorithm %s is accepted', (asymmetricAlgorithm) => {
      expect(resolveEncryptionOptions({ asymmetricAlgorithm }).asymmetricAlgorithm).toBe(asymmetricAlgorithm);
    });

    test('fernetTtlSeconds has no default (no age limit) and keeps a given value', () => {
      expect(resolveEncryptionOptions().fernetTtlSeconds).toBeUndefined();
      expect(resolveEncryptionOptions({ fernetTtlSeconds: 3600 }).fernetTtlSeconds).toBe(3600);
    });

    test('a 32-byte master key is accepted as a Buffer or as base64 text, and copied', () => {
      const bytes = randomBytes(32);
      const fromBuffer = resolveEncryptionOptions({ masterKey: bytes });
      const fromText = resolveEncryptionOptions({ masterKey: bytes.toString('base64') });
      expect(fromBuffer.masterKey).toEqual(bytes);
      expect(fromText.masterKey).toEqual(bytes);
      // Later changes to the caller's buffer must not change the configured key.
      const original = Buffer.from(bytes);
      bytes.fill(0);
      expect(fromBuffer.masterKey).toEqual(original);
    });

    test('the caller’s options object is not modified', () => {
      const options = { keySize: 64, keyRetention: { maxPreviousKeys: 1 } };
      const copy = structuredClone(options);
      resolveEncryptionOptions(options);
      expect(options).toEqual(copy);
    });
  });

  describe('invalid values are an EncryptionConfigError naming the field and what it allows', () => {
    test.each([
      ['an unknown algorithm', { algorithm: 'AES-128-GCM' }, 'algorithm must be one of the following values: AES-256-GCM, ChaCha20-Poly1305, AES-256-CBC-HMAC-SHA256, fernet'],
      ['an unknown asymmetricAlgorithm', { asymmetricAlgorithm: 'RSA1_5' }, 'asymmetricAlgorithm must be one of the following values: RSA-OAEP-256, ECDH-ES+A256KW-X25519, ECDH-ES+A256KW-P256'],
      ['fernetTtlSeconds 0', { fernetTtlSeconds: 0 }, 'fernetTtlSeconds must not be less than 1'],
      ['fractional fernetTtlSeconds', { fernetTtlSeconds: 1.5 }, 'fernetTtlSeconds must be an integer number'],
      ['keySize 31', { keySize: 31 }, 'keySize must be one of the following values: 32, 64'],
      ['keySize as text', { keySize: '32' }, 'keySize must be one of the following values: 32, 64'],
      ['a negative compressionThreshold', { compressionThreshold: -1 }, 'compressionThreshold must not be less than 0'],
      ['iterations 99,999', { iterations: 99_999 }, 'iterations must not be less than 100000'],
      ['fractional iterations', { iterations: 100_000.5 }, 'iterations must be an integer number'],
      ['rsaKeySize 1024', { rsaKeySize: 1024 }, 'rsaKeySize must be one of the following values: 2048, 3072, 4096'],
      ['saltSize 8', { saltSize: 8 }, 'saltSize must not be less than 16'],
      ['enableCompression as text', { enableCompression: 'yes' }, 'enableCompression must be a boolean value'],
      ['an unknown compression algorithm', { compressionAlgorithm: 'zstd' }, 'compressionAlgorithm must be one of the following values: gzip, brotli'],
      ['maxDecompressedSize 0', { maxDecompressedSize: 0 }, 'maxDecompressedSize must be a positive number'],
      ['keyRotationInterval 0', { keyRotationInterval: 0 }, 'keyRotationInterval must be a positive number'],
      ['another padding scheme', { paddingScheme: 'ISO10126' }, 'paddingScheme must be one of the following values: PKCS7'],
      ['a negative keyRetention.maxPreviousKeys', { keyRetention: { maxPreviousKeys: -1 } }, 'keyRetention.maxPreviousKeys must not be less than 0'],
      ['keyRetention.maxAgeMs 0', { keyRetention: { maxAgeMs: 0 } }, 'keyRetention.maxAgeMs must be a positive number'],
      ['a master key that is not base64', { masterKey: 'not base64!' }, 'masterKey must be 32 bytes, as a Buffer or base64 text'],
      ['a 31-byte master key', { masterKey: randomBytes(31) }, 'masterKey must be 32 bytes, as a Buffer or base64 text'],
      ['a base64 master key of 16 bytes', { masterKey: randomBytes(16).toString('base64') }, 'masterKey must be 32 bytes, as a Buffer or base64 text'],
      ['a master key as a Uint8Array', { masterKey: new Uint8Array(32) }, 'masterKey must be 32 bytes, as a Buffer or base64 text'],
      ['a key store without save', { keyStore: { load: async () => undefined } }, 'keyStore must implement KeyStore (load and save)'],
    ])('%s', (_name, options, expected) => {
      const error = configErrorOf(options);
      expect(error.message).toBe(`Invalid encryption configuration: ${expected}`);
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.name).toBe('EncryptionConfigError');
    });

    test.each([
      ['a misspelt top-level option', { algoritm: 'AES-256-GCM' }, 'algoritm', ['algorithm', 'keySize']],
      ['an unknown nested option', { keyRetention: { maxKeys: 3 } }, 'keyRetention.maxKeys', ['maxPreviousKeys', 'maxAgeMs']],
    ])('%s names the field and the options that exist', (_name, options, field, allowed) => {
      const { message } = configErrorOf(options);
      expect(message).toContain(field);
      for (const name of allowed) expect(message).toContain(name);
    });

    test('every problem is reported at once', () => {
      const { message } = configErrorOf({ keySize: 31, iterations: 99_999, rsaKeySize: 1024, masterKey: 'x' });
      for (const field of ['keySize', 'iterations', 'rsaKeySize', 'masterKey']) expect(message).toContain(field);
    });

    test('the message never contains a rejected master key', () => {
      const masterKey = randomBytes(31);
      const { message } = configErrorOf({ masterKey });
      for (const form of [masterKey.toString('hex'), masterKey.toString('base64')]) expect(message).not.toContain(form);
    });
  });
});
