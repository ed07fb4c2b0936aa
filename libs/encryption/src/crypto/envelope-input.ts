import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { EncryptionContext } from '../interfaces/encryption-call-options.interface.js';
import { decodeBase64Url } from './base64.js';

const NO_CONTEXT = Buffer.alloc(0);
const CONTEXT_BYTES_TAG = Buffer.from([1]);

/**
 * The context's AAD form. A leading tag byte keeps "no context", bytes/text and objects apart; an
 * object is canonicalised (keys sorted) so key order doesn't matter.
 */
export function contextBytes(context: EncryptionContext | undefined): Buffer {
  if (context === undefined) return NO_CONTEXT;
  if (typeof context === 'string') return Buffer.concat([CONTEXT_BYTES_TAG, Buffer.from(context, 'utf8')]);
  if (context instanceof Uint8Array) return Buffer.concat([CONTEXT_BYTES_TAG, context]);
  if (typeof context === 'object' && context !== null) {
    // The same bytes as the tag followed by JSON.stringify(sorted entries), built in one string.
    const keys = Object.keys(context).sort();
    let json = '\u0002[';
    for (let i = 0; i < keys.length; i++) {
      const value = (context as Record<string, unknown>)[keys[i]];
      if (typeof value !== 'string') throw new EncryptionInputError(MESSAGES.INVALID_CONTEXT);
      json += `${i ? ',' : ''}[${JSON.stringify(keys[i])},${JSON.stringify(value)}]`;
    }
    return Buffer.from(`${json}]`, 'utf8');
  }
  throw new EncryptionInputError(MESSAGES.INVALID_CONTEXT);
}

/** A ciphertext given to `decrypt()` as bytes: binary as it is, text as strict base64url. */
export function ciphertextBytes(input: Buffer | Uint8Array | string): Buffer {
  if (typeof input === 'string') {
    const bytes = decodeBase64Url(input);
    if (!bytes) throw new DecryptionError();
    return bytes;
  }
  if (input instanceof Uint8Array) return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  throw new DecryptionError();
}
