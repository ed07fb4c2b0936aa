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

/** The authenticated payload would decompress beyond `maxDecompressedSize`. */
export class DecompressionLimitError extends DecryptionError {
  constructor(readonly limit: number) {
    super(MESSAGES.DECOMPRESSION_LIMIT(limit), 'DECOMPRESSION_LIMIT');
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
