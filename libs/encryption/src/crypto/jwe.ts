import type { CompactJWEHeaderParameters, CryptoKey, DecryptOptions, JSONWebKeySet, JWK, KeyObject } from 'jose';
import { calculateJwkThumbprint, compactDecrypt, CompactEncrypt, exportJWK, generateKeyPair } from 'jose';

import { DecryptionError, EncryptionInputError, KeyNotFoundError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import { decodeBase64Url } from './base64.js';

/**
 * Standard compact JWE (RFC 7516) for exchanging data with other JOSE implementations, built on
 * `jose`. Tokens are made with `enc` A256GCM and one of two key management algorithms; decryption
 * accepts nothing else (no `dir`, no AES key wrap, no RSA1_5, no compression), and the protected
 * header always names the recipient key in `kid`.
 */

/** Key management algorithms this layer produces and accepts. */
export const JWE_ALGORITHMS = ['RSA-OAEP-256', 'ECDH-ES+A256KW'] as const;
export type JweAlgorithm = (typeof JWE_ALGORITHMS)[number];

/** The content encryption of every token made here, and the only one accepted by default. */
export const JWE_ENCRYPTION = 'A256GCM' as const;

/** Content encryptions `jweDecrypt` can be told to accept from other producers; all are AEADs. */
export const JWE_CONTENT_ENCRYPTIONS = ['A128GCM', 'A192GCM', 'A256GCM', 'A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512'] as const;
export type JweContentEncryption = (typeof JWE_CONTENT_ENCRYPTIONS)[number];

/** A public key (encryption) or private key (decryption) in any form `jose` takes. */
export type JweKey = CryptoKey | KeyObject | JWK;

export interface JweRecipient {
  /** The recipient's public key. */
  key: JweKey;
  /** Written to the protected header so the recipient can find its private key. */
  kid: string;
  alg: JweAlgorithm;
}

/**
 * Finds the private key for a token. Called only after `alg` and `enc` passed the allowlists;
 * `kid` is `undefined` when the producer didn't set one. Return `undefined` for an unknown key.
 * Errors it throws (a key store being down, say) reach the caller unchanged.
 */
export type JweKeyResolver = (kid: string | undefined, alg: JweAlgorithm) => JweKey | undefined | Promise<JweKey | undefined>;

export interface JweDecryptOptions {
  /**
   * Content encryptions to accept, for tokens from producers that don't use A256GCM.
   * @default ['A256GCM']
   */
  contentEncryptionAlgorithms?: readonly JweContentEncryption[];
}

export type JweKeySpec =
  | {
      alg: 'RSA-OAEP-256';
      /** @default 2048 */
      modulusLength?: 2048 | 3072 | 4096;
    }
  | {
      alg: 'ECDH-ES+A256KW';
      /** @default 'X25519' */
      crv?: 'X25519' | 'P-256';
    };

/** A key pair as JWKs, both carrying `kid` (the RFC 7638 SHA-256 thumbprint), `alg` and `use: 'enc'`. */
export interface JweKeyPair {
  kid: string;
  alg: JweAlgorithm;
  publicJwk: JWK;
  privateJwk: JWK;
}

export interface JweEncryptOptions {
  /** Content type (RFC 7516 §4.1.12) written to the protected header, so the recipient can restore the payload's type. */
  cty?: string;
}

/** Encrypts `plaintext` to `recipient` as a compact JWE with `{ alg, enc: 'A256GCM', kid }` (and `cty` if given) protected. */
export async function jweEncrypt(
  plaintext: Uint8Array,
  recipient: JweRecipient,
  options: JweEncryptOptions = {},
): Promise<string> {
  if (!(plaintext instanceof Uint8Array)) throw new EncryptionInputError(MESSAGES.NOT_BYTES);
  const { key, kid, alg } = recipient;
  if (!isJweAlgorithm(alg)) throw new EncryptionInputError(MESSAGES.UNSUPPORTED_JWE_ALGORITHM('key management', JWE_ALGORITHMS));
  if (typeof kid !== 'string' || kid.length === 0) throw new EncryptionInputError(MESSAGES.INVALID_JWE_KID);
  try {
    const cty = options.cty === undefined ? {} : { cty: options.cty };
    return await new CompactEncrypt(plaintext).setProtectedHeader({ alg, enc: JWE_ENCRYPTION, kid, ...cty }).encrypt(key);
  } catch {
    throw new EncryptionInputError(MESSAGES.INVALID_JWE_KEY(alg));
  }
}

/**
 * Decrypts a compact JWE with the key `resolveKey` returns for its `kid`. Any problem with the token
 * (malformed, tampered, wrong key, algorithm not allowed, `zip` header) is a `DecryptionError` with
 * the generic message; a key id the resolver doesn't know is a `KeyNotFoundError`.
 */
export async function jweDecrypt(token: string, resolveKey: JweKeyResolver, options: JweDecryptOptions = {}): Promise<Buffer> {
  const decryptOptions = decryptOptionsFor(options.contentEncryptionAlgorithms);
  if (!isCanonicalCompact(token)) throw new DecryptionError();
  let resolverFailure: { error: unknown } | undefined;
  try {
    const { plaintext } = await compactDecrypt(
      token,
      async (header: CompactJWEHeaderParameters) => {
        // Compression is refused before any key is touched: inflating attacker data is a DoS risk we don't need.
        // A kid, when present, must be a string (the resolver's contract).
        if (header.zip !== undefined || (header.kid !== undefined && typeof header.kid !== 'string')) {
          throw new DecryptionError();
        }
        let key: JweKey | undefined;
        try {
          key = await resolveKey(header.kid, header.alg as JweAlgorithm);
        } catch (error) {
          resolverFailure = { error };
          throw error;
        }
        if (key === undefined) throw new KeyNotFoundError(header.kid ?? '');
        return key;
      },
      decryptOptions,
    );
    return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  } catch (error) {
    if (resolverFailure) throw resolverFailure.error;
    if (error instanceof KeyNotFoundError) throw error;
    // No cause attached: jose's messages tell which check failed, and that must stay unobservable.
    throw new DecryptionError();
  }
}

const KEY_PARAMETERS = { 'RSA-OAEP-256': [2048, 3072, 4096], 'ECDH-ES+A256KW': ['X25519', 'P-256'] } as const;

/** Generates a key pair for `alg` (off the event loop) and names it by its JWK thumbprint. */
export async function generateJweKeyPair(spec: JweKeySpec): Promise<JweKeyPair> {
  if (!isJweAlgorithm(spec?.alg)) {
    throw new EncryptionInputError(MESSAGES.UNSUPPORTED_JWE_ALGORITHM('key management', JWE_ALGORITHMS));
  }
  const parameter = spec.alg === 'RSA-OAEP-256' ? (spec.modulusLength ?? 2048) : (spec.crv ?? 'X25519');
  if (!(KEY_PARAMETERS[spec.alg] as readonly unknown[]).includes(parameter)) {
    throw new EncryptionInputError(MESSAGES.INVALID_JWE_KEY(spec.alg));
  }
  const options =
    spec.alg === 'RSA-OAEP-256' ? { modulusLength: parameter as number, extractable: true } : { crv: parameter as string, extractable: true };
  const { publicKey, privateKey } = await generateKeyPair(spec.alg, options);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const fields = { kid, alg: spec.alg, use: 'enc' };
  return { kid, alg: spec.alg, publicJwk: { ...publicJwk, ...fields }, privateJwk: { ...(await exportJWK(privateKey)), ...fields } };
}

/** Public members per key type: anything else (private parts, unknown extras) never reaches a JWKS. */
const PUBLIC_MEMBERS = new Map<unknown, readonly string[]>([
  ['RSA', ['kty', 'n', 'e']],
  ['EC', ['kty', 'crv', 'x', 'y']],
  ['OKP', ['kty', 'crv', 'x']],
]);
const METADATA_MEMBERS = ['kid', 'alg', 'use'] as const;

/**
 * A JWK Set (RFC 7517 §5) publishing the public half of each key; private JWKs are accepted and
 * stripped. Symmetric keys and keys without a `kid` are refused.
 */
export function buildJwks(keys: readonly JWK[]): JSONWebKeySet {
  return {
    keys: keys.map((key) => {
      const jwk = (key ?? {}) as Record<string, unknown>;
      const members = PUBLIC_MEMBERS.get(jwk.kty);
      if (!members || typeof jwk.kid !== 'string' || jwk.kid.length === 0 || members.some((m) => typeof jwk[m] !== 'string')) {
        throw new EncryptionInputError(MESSAGES.INVALID_JWKS_KEY);
      }
      const result: Record<string, string> = {};
      for (const member of [...members, ...METADATA_MEMBERS]) {
        const value = jwk[member];
        if (typeof value === 'string') result[member] = value;
      }
      return result as JWK;
    }),
  };
}

function isJweAlgorithm(alg: unknown): alg is JweAlgorithm {
  return (JWE_ALGORITHMS as readonly unknown[]).includes(alg);
}

const DEFAULT_DECRYPT_OPTIONS: DecryptOptions = {
  keyManagementAlgorithms: [...JWE_ALGORITHMS],
  contentEncryptionAlgorithms: [JWE_ENCRYPTION],
  // 0 makes jose refuse `zip` outright as a second line behind the header check above.
  maxDecompressedLength: 0,
};

function decryptOptionsFor(encs: readonly JweContentEncryption[] | undefined): DecryptOptions {
  if (encs === undefined) return DEFAULT_DECRYPT_OPTIONS;
  if (!Array.isArray(encs) || encs.length === 0 || !encs.every((enc) => (JWE_CONTENT_ENCRYPTIONS as readonly unknown[]).includes(enc))) {
    throw new EncryptionInputError(MESSAGES.UNSUPPORTED_JWE_ALGORITHM('content encryption', JWE_CONTENT_ENCRYPTIONS));
  }
  return { ...DEFAULT_DECRYPT_OPTIONS, contentEncryptionAlgorithms: [...encs] };
}

/**
 * Five canonical base64url segments and nothing else. On Node 20 jose decodes with `atob`, which
 * skips whitespace and ignores non-zero trailing bits, so one token would have many spellings.
 */
export function isCanonicalCompact(token: unknown): token is string {
  if (typeof token !== 'string') return false;
  const segments = token.split('.');
  return segments.length === 5 && segments[0].length > 0 && segments.every((segment) => decodeBase64Url(segment) !== undefined);
}
