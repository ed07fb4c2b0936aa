import { createCipheriv, createDecipheriv, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * The authenticated ciphers the envelope can use, as thin wrappers over `node:crypto`.
 * `open` throws on any authentication failure; callers translate that into `DecryptionError`.
 */
export interface AeadCipher {
  /** Byte stored in the envelope header; never reuse a retired id. */
  readonly id: number;
  readonly name: AeadAlgorithmName;
  /** Bytes of key material `seal`/`open` expect. */
  readonly keySize: number;
  readonly nonceSize: number;
  readonly tagSize: number;
  seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer };
  /** Bytes of ciphertext (without the tag) that `seal` makes of `plaintextLength` bytes. */
  ciphertextLength(plaintextLength: number): number;
  /**
   * `seal`, writing the ciphertext and then the tag into `out` from `offset`, which must leave room for
   * both. For a caller assembling an envelope: a large ciphertext isn't built apart and then copied.
   * Returns the bytes written.
   */
  sealInto(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer, out: Buffer, offset: number): number;
  open(key: Buffer, nonce: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer;
}

export type AeadAlgorithmName = 'AES-256-GCM' | 'ChaCha20-Poly1305' | 'AES-256-CBC-HMAC-SHA256';

class AuthenticationFailure extends Error {}

const NONCE_POOL_BYTES = 4096;
let noncePool = Buffer.alloc(0);
let noncePoolOffset = 0;

/**
 * A fresh random nonce from the CSPRNG. One `randomFillSync` call costs about as much as sealing a
 * small message, so bytes are drawn 4 KiB at a time and handed out in order: each byte goes into
 * one nonce only, and a used pool is dropped, never refilled, so a nonce can't change under a holder.
 */
export function randomNonce(size: number): Buffer {
  if (noncePoolOffset + size > noncePool.length) {
    noncePool = randomFillSync(Buffer.allocUnsafeSlow(NONCE_POOL_BYTES));
    noncePoolOffset = 0;
  }
  const nonce = noncePool.subarray(noncePoolOffset, noncePoolOffset + size);
  noncePoolOffset += size;
  return nonce;
}

function checkSizes(cipher: AeadCipher, key: Buffer, nonce: Buffer, tag?: Buffer): void {
  if (key.length !== cipher.keySize || nonce.length !== cipher.nonceSize || (tag && tag.length !== cipher.tagSize)) {
    throw new AuthenticationFailure();
  }
}

/**
 * `sealInto` feeds a stream cipher this much at a time: each output is then a small buffer the
 * allocator recycles, where one output the size of a large payload is fresh memory to fault in.
 */
const SEAL_SLICE = 64 * 1024;

function nodeAead(id: number, name: AeadAlgorithmName, nodeName: 'aes-256-gcm' | 'chacha20-poly1305'): AeadCipher {
  const cipher: AeadCipher = {
    id,
    name,
    keySize: 32,
    nonceSize: 12,
    tagSize: 16,
    seal(key, nonce, plaintext, aad) {
      checkSizes(cipher, key, nonce);
      const c = createCipheriv(nodeName as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      // Stream ciphers: final() yields nothing, so skip the copy Buffer.concat would make.
      const head = plaintext.length ? c.update(plaintext) : Buffer.alloc(0);
      const rest = c.final();
      return { ciphertext: rest.length ? Buffer.concat([head, rest]) : head, tag: c.getAuthTag() };
    },
    ciphertextLength: (plaintextLength) => plaintextLength,
    sealInto(key, nonce, plaintext, aad, out, offset) {
      checkSizes(cipher, key, nonce);
      const c = createCipheriv(nodeName as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      let at = offset;
      for (let start = 0; start < plaintext.length; start += SEAL_SLICE) {
        at += c.update(plaintext.subarray(start, start + SEAL_SLICE)).copy(out, at);
      }
      at += c.final().copy(out, at);
      at += c.getAuthTag().copy(out, at);
      return at - offset;
    },
    open(key, nonce, ciphertext, tag, aad) {
      checkSizes(cipher, key, nonce, tag);
      const d = createDecipheriv(nodeName as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
      d.setAuthTag(tag);
      d.setAAD(aad, { plaintextLength: ciphertext.length });
      const head = d.update(ciphertext);
      d.final(); // throws when the tag does not verify
      return head;
    },
  };
  return cipher;
}

/** AES-256-GCM with 96-bit random nonces and 128-bit tags: the default. */
export const AES_256_GCM = nodeAead(1, 'AES-256-GCM', 'aes-256-gcm');

/** ChaCha20-Poly1305 (RFC 8439): fast without AES hardware, same sizes as GCM. */
export const CHACHA20_POLY1305 = nodeAead(2, 'ChaCha20-Poly1305', 'chacha20-poly1305');

function cbcHmacTag(macKey: Buffer, aad: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  // MAC input as in RFC 7518 §5.2.2.1: AAD || IV || C || AAD length in bits (64-bit big-endian).
  const aadBits = Buffer.alloc(8);
  aadBits.writeBigUInt64BE(BigInt(aad.length) * 8n);
  return createHmac('sha256', macKey).update(aad).update(iv).update(ciphertext).update(aadBits).digest();
}

/**
 * AES-256-CBC with PKCS#7 padding, then HMAC-SHA256 over everything (encrypt-then-MAC).
 * The 64-byte key is the encryption key followed by the MAC key. The tag is checked in constant
 * time before any decryption, so padding errors are never observable.
 */
export const AES_256_CBC_HMAC_SHA256: AeadCipher = {
  id: 3,
  name: 'AES-256-CBC-HMAC-SHA256',
  keySize: 64,
  nonceSize: 16,
  tagSize: 32,
  seal(key, iv, plaintext, aad) {
    checkSizes(AES_256_CBC_HMAC_SHA256, key, iv);
    const c = createCipheriv('aes-256-cbc', key.subarray(0, 32), iv); // PKCS#7 padding is Node's default
    const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
    return { ciphertext, tag: cbcHmacTag(key.subarray(32), aad, iv, ciphertext) };
  },
  // PKCS#7 always adds 1 to 16 bytes of padding.
  ciphertextLength: (plaintextLength) => (Math.floor(plaintextLength / 16) + 1) * 16,
  sealInto(key, iv, plaintext, aad, out, offset) {
    const { ciphertext, tag } = AES_256_CBC_HMAC_SHA256.seal(key, iv, plaintext, aad);
    return ciphertext.copy(out, offset) + tag.copy(out, offset + ciphertext.length);
  },
  open(key, iv, ciphertext, tag, aad) {
    checkSizes(AES_256_CBC_HMAC_SHA256, key, iv, tag);
    const expected = cbcHmacTag(key.subarray(32), aad, iv, ciphertext);
    if (!timingSafeEqual(expected, tag)) throw new AuthenticationFailure();
    const d = createDecipheriv('aes-256-cbc', key.subarray(0, 32), iv);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  },
};

export const AEAD_CIPHERS: readonly AeadCipher[] = [AES_256_GCM, CHACHA20_POLY1305, AES_256_CBC_HMAC_SHA256];

const byId = new Map(AEAD_CIPHERS.map((c) => [c.id, c]));
const byName = new Map(AEAD_CIPHERS.map((c) => [c.name, c]));

export function aeadById(id: number): AeadCipher | undefined {
  return byId.get(id);
}

export function aeadByName(name: AeadAlgorithmName): AeadCipher {
  const cipher = byName.get(name);
  if (!cipher) throw new Error(`Unknown AEAD algorithm ${name}`);
  return cipher;
}
