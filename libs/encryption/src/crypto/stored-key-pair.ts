import type { KeyObject } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';

import type { AsymmetricAlgorithm } from '../interfaces/encryption-module-options.interface.js';
import type { KeyPairState, StoredKeyPair } from '../interfaces/key-store.interface.js';
import type { JweKeySpec } from './jwe.js';
import { buildJwks, generateJweKeyPair } from './jwe.js';
import { unwrapKey, wrapKey } from './key-wrap.js';

/**
 * Key pairs of the key ring as they are stored: the public JWK in the clear, the private JWK as
 * UTF-8 JSON wrapped under the master key exactly like a data key, with the `kid` bound as AAD so a
 * wrapped private key can't be moved onto another key pair's entry.
 */

/** The JWE key spec an `asymmetricAlgorithm` option names. */
export function keyPairSpecOf(algorithm: AsymmetricAlgorithm, rsaKeySize: number): JweKeySpec {
  switch (algorithm) {
    case 'ECDH-ES+A256KW-X25519':
      return { alg: 'ECDH-ES+A256KW', crv: 'X25519' };
    case 'ECDH-ES+A256KW-P256':
      return { alg: 'ECDH-ES+A256KW', crv: 'P-256' };
    default:
      return { alg: 'RSA-OAEP-256', modulusLength: rsaKeySize as 2048 | 3072 | 4096 };
  }
}

/** Generates a key pair (off the event loop) and wraps its private half under `masterKey`. */
export async function createStoredKeyPair(
  spec: JweKeySpec,
  masterKey: Buffer,
  state: KeyPairState,
  createdAt: string,
): Promise<StoredKeyPair> {
  const { kid, alg, publicJwk, privateJwk } = await generateJweKeyPair(spec);
  const secret = Buffer.from(JSON.stringify(privateJwk), 'utf8');
  try {
    return {
      kid,
      alg,
      ...(spec.alg === 'RSA-OAEP-256' ? { rsaKeySize: spec.modulusLength ?? 2048 } : { crv: spec.crv ?? 'X25519' }),
      state,
      createdAt,
      stateChangedAt: createdAt,
      // buildJwks keeps public members only, whatever `jose` exported.
      publicJwk: buildJwks([publicJwk]).keys[0] as Record<string, string>,
      wrappedPrivateKey: wrapKey(masterKey, kid, secret),
    };
  } finally {
    secret.fill(0);
  }
}

/** The private key, or `undefined` when the master key is wrong or the stored value was altered. */
export function unwrapPrivateKey(masterKey: Buffer, pair: StoredKeyPair): KeyObject | undefined {
  const secret = unwrapKey(masterKey, pair.kid, pair.wrappedPrivateKey);
  if (!secret) return undefined;
  try {
    return createPrivateKey({ key: JSON.parse(secret.toString('utf8')) as Record<string, string>, format: 'jwk' });
  } catch {
    return undefined;
  } finally {
    secret.fill(0);
  }
}

/** The same pair with its private key wrapped under `newMasterKey`; `undefined` when `masterKey` can't unwrap it. */
export function rewrapKeyPair(masterKey: Buffer, newMasterKey: Buffer, pair: StoredKeyPair): StoredKeyPair | undefined {
  const secret = unwrapKey(masterKey, pair.kid, pair.wrappedPrivateKey);
  if (!secret) return undefined;
  try {
    return { ...pair, wrappedPrivateKey: wrapKey(newMasterKey, pair.kid, secret) };
  } finally {
    secret.fill(0);
  }
}
