import { randomBytes } from 'node:crypto';

import { AES_256_GCM } from './aead.js';

const WRAP_PREFIX = 'kw1.';

/**
 * Wraps a data key under the master key (key-encryption key) with AES-256-GCM. The key id is bound
 * as AAD, so a wrapped key can't be swapped onto another id in the store.
 */
export function wrapKey(masterKey: Buffer, keyId: string, secret: Buffer): string {
  const nonce = randomBytes(AES_256_GCM.nonceSize);
  const { ciphertext, tag } = AES_256_GCM.seal(masterKey, nonce, secret, wrapAad(keyId));
  return WRAP_PREFIX + Buffer.concat([nonce, ciphertext, tag]).toString('base64url');
}

/** Returns the data key, or `undefined` when the master key is wrong or the wrapped value was altered. */
export function unwrapKey(masterKey: Buffer, keyId: string, wrapped: string): Buffer | undefined {
  if (!wrapped.startsWith(WRAP_PREFIX)) return undefined;
  const bytes = Buffer.from(wrapped.slice(WRAP_PREFIX.length), 'base64url');
  const { nonceSize, tagSize } = AES_256_GCM;
  if (bytes.length < nonceSize + tagSize) return undefined;
  try {
    return AES_256_GCM.open(
      masterKey,
      bytes.subarray(0, nonceSize),
      bytes.subarray(nonceSize, bytes.length - tagSize),
      bytes.subarray(bytes.length - tagSize),
      wrapAad(keyId),
    );
  } catch {
    return undefined;
  }
}

function wrapAad(keyId: string): Buffer {
  return Buffer.from(`nestjs-encryption/key-wrap/v1:${keyId}`, 'utf8');
}
