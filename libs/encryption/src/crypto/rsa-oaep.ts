import type { JsonWebKey, KeyObject } from 'node:crypto';
import { constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt } from 'node:crypto';

import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';

/**
 * RSAES-OAEP (RFC 8017) with SHA-256 and MGF1-SHA-256: the parameters of JWE's `RSA-OAEP-256` and
 * of most KMS "RSAES_OAEP_SHA_256" key wrapping, so ciphertexts interoperate with those systems.
 */

/** An RSA key as a `KeyObject`, PEM text (SPKI/PKCS#8/PKCS#1) or JWK. */
export type RsaKeyInput = KeyObject | string | JsonWebKey;

/** Smaller moduli are refused: 2048 bits is the floor of current guidance (NIST SP 800-131A). */
export const RSA_OAEP_MIN_MODULUS_BITS = 2048;

const HASH = 'sha256';
const HASH_SIZE = 32;

/** Largest plaintext OAEP-SHA-256 can carry under `publicKey`: k - 2·hLen - 2 bytes. */
export function rsaOaepMaxMessageSize(publicKey: RsaKeyInput): number {
  return modulusBytes(toRsaKey(publicKey, 'public')) - 2 * HASH_SIZE - 2;
}

/** Encrypts a short message (typically a key) to `publicKey`; `label` is bound to the ciphertext. */
export function rsaOaepEncrypt(publicKey: RsaKeyInput, data: Uint8Array, label?: Uint8Array): Buffer {
  const key = toRsaKey(publicKey, 'public');
  if (!(data instanceof Uint8Array) || (label !== undefined && !(label instanceof Uint8Array))) {
    throw new EncryptionInputError(MESSAGES.NOT_BYTES);
  }
  const max = modulusBytes(key) - 2 * HASH_SIZE - 2;
  if (data.length > max) throw new EncryptionInputError(MESSAGES.RSA_OAEP_MESSAGE_TOO_LONG(max));
  return publicEncrypt(oaep(key, label), data);
}

/**
 * Decrypts with `privateKey` and the same `label` used to encrypt. Every failure, malformed or not,
 * is the same `DecryptionError` with no cause attached: distinguishable OAEP errors enable
 * Manger's attack.
 */
export function rsaOaepDecrypt(privateKey: RsaKeyInput, ciphertext: Uint8Array, label?: Uint8Array): Buffer {
  const key = toRsaKey(privateKey, 'private');
  if (label !== undefined && !(label instanceof Uint8Array)) throw new EncryptionInputError(MESSAGES.NOT_BYTES);
  // A ciphertext is exactly k bytes (RFC 8017 §7.1.2 step 1); other lengths are refused before any RSA operation.
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== modulusBytes(key)) throw new DecryptionError();
  try {
    return privateDecrypt(oaep(key, label), ciphertext);
  } catch {
    throw new DecryptionError();
  }
}

function oaep(key: KeyObject, label: Uint8Array | undefined) {
  return {
    key,
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: HASH,
    ...(label?.length ? { oaepLabel: label } : {}),
  };
}

function toRsaKey(input: RsaKeyInput, type: 'public' | 'private'): KeyObject {
  let key: KeyObject | undefined;
  try {
    if (isKeyObject(input)) {
      key = type === 'public' && input.type === 'private' ? createPublicKey(input) : input;
    } else if (typeof input === 'string') {
      key = type === 'public' ? createPublicKey(input) : createPrivateKey(input);
    } else if (typeof input === 'object' && input !== null) {
      key = type === 'public' ? createPublicKey({ key: input, format: 'jwk' }) : createPrivateKey({ key: input, format: 'jwk' });
    }
  } catch {
    key = undefined;
  }
  const bits = key?.asymmetricKeyDetails?.modulusLength;
  if (!key || key.type !== type || key.asymmetricKeyType !== 'rsa' || bits === undefined || bits < RSA_OAEP_MIN_MODULUS_BITS) {
    throw new EncryptionInputError(MESSAGES.INVALID_RSA_KEY(type, RSA_OAEP_MIN_MODULUS_BITS));
  }
  return key;
}

function isKeyObject(value: unknown): value is KeyObject {
  return (value as { [Symbol.toStringTag]?: string } | null)?.[Symbol.toStringTag] === 'KeyObject';
}

function modulusBytes(key: KeyObject): number {
  return Math.ceil(key.asymmetricKeyDetails!.modulusLength! / 8);
}
