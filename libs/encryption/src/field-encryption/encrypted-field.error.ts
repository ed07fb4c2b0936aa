import { DecompressionLimitError, DecryptionError, EncryptionError } from '../errors/encryption.errors.js';
import { FIELD_MESSAGES } from './field-encryption.messages.js';

/** Why a request field or body was refused; what a client sees as `reason`. */
export type EncryptedFieldRejection = 'DECRYPTION_FAILED' | 'INVALID_TYPE' | 'CIPHERTEXT_TOO_LARGE' | 'DECOMPRESSION_LIMIT';

/**
 * An `@Encrypted()` field (or an `@EncryptedBody()` body) that can't be accepted. `field` is its
 * dotted path (`body` for a whole body), `reason` the coarse cause a client may see, and `code` the
 * precise one for operators (e.g. `KEY_NOT_FOUND`, which clients only see as `DECRYPTION_FAILED`).
 */
export class EncryptedFieldError extends EncryptionError {
  constructor(
    readonly field: string,
    readonly reason: EncryptedFieldRejection,
    message: string,
    code: string = reason,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }

  /** Translates a failure of `EncryptionService.decrypt` for this field. */
  static fromDecryptionFailure(field: string, error: unknown): EncryptedFieldError {
    if (error instanceof DecompressionLimitError) {
      return new EncryptedFieldError(field, 'DECOMPRESSION_LIMIT', FIELD_MESSAGES.DECOMPRESSION_LIMIT(field), error.code, { cause: error });
    }
    // Anything else is a failure to authenticate, whatever the cause: it must look the same to a client.
    const code = error instanceof DecryptionError ? error.code : 'DECRYPTION_FAILED';
    return new EncryptedFieldError(field, 'DECRYPTION_FAILED', FIELD_MESSAGES.UNDECRYPTABLE(field), code, { cause: error });
  }

  static notACiphertext(field: string): EncryptedFieldError {
    return new EncryptedFieldError(field, 'INVALID_TYPE', FIELD_MESSAGES.NOT_A_CIPHERTEXT(field));
  }

  static wrongType(field: string, expected: string): EncryptedFieldError {
    return new EncryptedFieldError(field, 'INVALID_TYPE', FIELD_MESSAGES.WRONG_TYPE(field, expected));
  }

  static tooLong(field: string, limit: number): EncryptedFieldError {
    return new EncryptedFieldError(field, 'CIPHERTEXT_TOO_LARGE', FIELD_MESSAGES.TOO_LONG(field, limit));
  }
}
