import type { ManagedKey } from '../crypto/key-ring.js';
import type { EncodedPlaintext, Plaintext } from '../crypto/plaintext-codec.js';
import { encodePlaintext, UnencodableValueError } from '../crypto/plaintext-codec.js';
import { EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';

/** `encodePlaintext` with its failures as the `EncryptionInputError`s `encrypt()` throws. */
export function encodeInput(data: Plaintext): EncodedPlaintext {
  try {
    return encodePlaintext(data);
  } catch (error) {
    if (!(error instanceof UnencodableValueError)) throw error;
    throw new EncryptionInputError(
      error.message === 'non-finite number'
        ? MESSAGES.NON_FINITE_NUMBER
        : MESSAGES.UNSUPPORTED_PLAINTEXT(error.message),
    );
  }
}

export function recordKeyUse(key: ManagedKey, counter: 'encryptions' | 'decryptions'): void {
  key.usage[counter]++;
  key.usage.lastUsedAt = Date.now();
}
