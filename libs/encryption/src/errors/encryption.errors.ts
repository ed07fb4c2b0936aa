import { MESSAGES } from './encryption.messages.js';

/** Base class of every error this library throws; `code` is stable and safe to branch on. */
export class EncryptionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Any ciphertext that can't be authenticated and decrypted: malformed, truncated, tampered, wrong key,
 * wrong context. The message is always the same so callers and attackers learn nothing about why.
 */
export class DecryptionError extends EncryptionError {
  constructor(message: string = MESSAGES.DECRYPTION_FAILED, code = 'DECRYPTION_FAILED', options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The ciphertext names a key id that no loaded key has. A `DecryptionError`, so callers can treat it as one. */
export class KeyNotFoundError extends DecryptionError {
  constructor(readonly keyId: string) {
    super(MESSAGES.KEY_NOT_FOUND, 'KEY_NOT_FOUND');
  }
}

/** The ciphertext's key is retired or destroyed: it refuses decryption by policy (re-encrypt, or restore the key). */
export class KeyRetiredError extends DecryptionError {
  constructor(readonly keyId: string) {
    super(MESSAGES.KEY_RETIRED, 'KEY_RETIRED');
  }
}

/** The authenticated payload would decompress beyond `maxDecompressedSize`. */
export class DecompressionLimitError extends DecryptionError {
  constructor(readonly limit: number) {
    super(MESSAGES.DECOMPRESSION_LIMIT(limit), 'DECOMPRESSION_LIMIT');
  }
}

/**
 * A well-formed ciphertext of a format this service is configured not to read (a compact JWE with
 * `enableAsymmetric: false`). Says which option, since the format is visible in the ciphertext anyway.
 */
export class FormatDisabledError extends DecryptionError {
  constructor(feature: string, option: string) {
    super(MESSAGES.FEATURE_DISABLED(feature, option), 'FORMAT_DISABLED');
  }
}

/** The value handed to `encrypt()` (or its options) can't be encrypted as given. */
export class EncryptionInputError extends EncryptionError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** The module configuration is invalid, or a feature is used that the configuration disables. */
export class EncryptionConfigError extends EncryptionError {
  constructor(message: string) {
    super('INVALID_CONFIG', message);
  }
}

/** The key store could not be reached or refused the operation; cached keys keep working meanwhile. */
export class KeyStoreUnavailableError extends EncryptionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KEY_STORE_UNAVAILABLE', message, options);
  }
}

/** The configured master key does not unwrap the stored keys. Nothing was written. */
export class MasterKeyMismatchError extends EncryptionConfigError {
  constructor() {
    super(MESSAGES.MASTER_KEY_MISMATCH);
  }
}

/** A key lifecycle operation that the key's state does not allow (e.g. destroying the active key). */
export class KeyStateError extends EncryptionError {
  constructor(message: string) {
    super('INVALID_KEY_STATE', message);
  }
}

/**
 * What a key store holds can't be read as a key ring (corrupt, truncated, not a ring). The store refuses
 * to write over it: restore it from a backup or remove it deliberately.
 */
export class KeyStoreCorruptError extends EncryptionError {
  constructor(
    readonly location: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('KEY_STORE_CORRUPT', MESSAGES.KEY_STORE_CORRUPT(location, reason), options);
  }
}

/** Another writer held the key store's lock for longer than the store waits. Nothing was written. */
export class KeyStoreLockTimeoutError extends EncryptionError {
  constructor(
    readonly lockPath: string,
    timeoutMs: number,
  ) {
    super('KEY_STORE_LOCK_TIMEOUT', MESSAGES.KEY_STORE_LOCK_TIMEOUT(lockPath, timeoutMs));
  }
}
