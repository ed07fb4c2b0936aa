import { decodeBase64Url } from './base64.js';
import { parseEnvelope } from './envelope.js';

/**
 * The id of the key that made a ciphertext (the binary envelope or its base64url text), read from the
 * envelope header without decrypting; `undefined` when the input is not a well-formed envelope.
 *
 * The id is not authenticated until the ciphertext decrypts: use it to find which values a key still
 * protects (re-encryption, key retirement), never to decide whether a value can be trusted.
 */
export function ciphertextKeyId(input: Buffer | Uint8Array | string): string | undefined {
  const bytes =
    typeof input === 'string'
      ? decodeBase64Url(input)
      : input instanceof Uint8Array
        ? Buffer.from(input.buffer, input.byteOffset, input.byteLength)
        : undefined;
  return bytes && parseEnvelope(bytes)?.keyId;
}
