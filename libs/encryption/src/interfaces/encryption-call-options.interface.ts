/**
 * Caller data bound to a ciphertext as additional authenticated data: it is not stored, and
 * decryption fails unless the same context is given again. An object is canonicalised (sorted keys).
 */
export type EncryptionContext = string | Buffer | Uint8Array | Record<string, string>;

export interface EncryptOptions {
  /** Encrypt with this key (at least `keySize` bytes) instead of the ring's active key. */
  key?: Buffer;
  /** Override `enableCompression` for this call (the threshold still applies). */
  compress?: boolean;
  /** Bound data that must be given again to decrypt. */
  context?: EncryptionContext;
}

export interface DecryptOptions {
  /** Try this key first; when it doesn't match, the key ring is used by the ciphertext's key id. */
  key?: Buffer;
  /** `false` returns a compressed payload still compressed, as a Buffer. @default true */
  decompress?: boolean;
  /** The context given at encryption. */
  context?: EncryptionContext;
}
