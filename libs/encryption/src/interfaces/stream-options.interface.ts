import type { EncryptionContext } from './encryption-call-options.interface.js';

/** Options of `createEncryptStream()`. */
export interface StreamEncryptOptions {
  /**
   * Plaintext bytes per chunk; each chunk carries its own 16-byte tag and is held in memory once while
   * it is sealed (and when decrypted), so a decrypting reader gets its first bytes only after a whole
   * chunk. Smaller chunks cost more CPU (a cipher context per chunk) but less memory per open stream.
   * 1 to 16777216 (16 MiB). @default 1048576 (1 MiB)
   */
  chunkSize?: number;
  /** Encrypt with this key (at least `keySize` bytes) instead of the ring's active key. */
  key?: Buffer;
  /** Bound data that must be given again to decrypt the stream. */
  context?: EncryptionContext;
  /** The Transform's buffer limit in bytes, on each side. @default Node's default (16 KiB) */
  highWaterMark?: number;
}

/** Options of `createDecryptStream()`. */
export interface StreamDecryptOptions {
  /** Try this key first; when it didn't make the stream, the key ring is used by the stream's key id. */
  key?: Buffer;
  /** The context given at encryption. */
  context?: EncryptionContext;
  /** The Transform's buffer limit in bytes, on each side. @default Node's default (16 KiB) */
  highWaterMark?: number;
}
