import type { AeadCipher } from './aead.js';
import { aeadById } from './aead.js';
import { COMMITMENT_SIZE } from './data-key.js';

/**
 * The streaming format, version 1 (docs/FORMAT.md, "Streams", is the normative description): a
 * header, then the plaintext in fixed-size chunks, each sealed on its own with the STREAM
 * construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015), so a stream of any size is encrypted and
 * decrypted in constant memory, and reordered, dropped, duplicated or truncated chunks are detected.
 *
 * ```
 * offset  size  field
 * 0       1     format (0x02: stream, version 1; a native envelope starts with 0x01)
 * 1       1     algorithm id (1 AES-256-GCM, 2 ChaCha20-Poly1305)
 * 2       1     flags, all zero
 * 3       4     chunk size C: plaintext bytes per chunk, uint32 big-endian, 1..16 MiB
 * 7       1     key id length L (1..255)
 * 8       L     key id (UTF-8)
 * 8+L     32    key commitment (as in the native envelope)
 * 40+L    32    salt of the per-stream subkey
 * 72+L    7     nonce prefix
 * 79+L          chunks: ciphertext ‖ 16-byte tag; every chunk but the last holds exactly C bytes
 * ```
 * subkey = HKDF-SHA256(data key, salt, "stream:" ‖ algorithm name); chunk i is sealed with nonce =
 * prefix ‖ uint32 big-endian i ‖ (0x01 for the last chunk, else 0x00) and AAD = header ‖ context.
 */
export const STREAM_FORMAT = 0x02;
export const STREAM_SALT_SIZE = 32;
export const STREAM_NONCE_PREFIX_SIZE = 7;
export const STREAM_TAG_SIZE = 16;
export const MAX_STREAM_CHUNK_SIZE = 16 * 1024 * 1024;
/** Chunk counters are 32 bits: a stream has at most 2^32 chunks. */
export const MAX_STREAM_CHUNKS = 2 ** 32;

const FIXED_PREFIX = 8;
const MAX_KEY_ID_BYTES = 255;
/** The algorithms a stream can use: 96-bit nonces and 16-byte tags. */
const STREAM_CIPHERS = new Set([1, 2]);

export interface StreamHeader {
  cipher: AeadCipher;
  chunkSize: number;
  keyId: string;
  commitment: Buffer;
  salt: Buffer;
  noncePrefix: Buffer;
  /** The serialized header exactly as on the wire (part of every chunk's AAD). */
  bytes: Buffer;
}

/** Bytes of a header whose key id is `keyIdBytes` long. */
export function streamHeaderSize(keyIdBytes: number): number {
  return FIXED_PREFIX + keyIdBytes + COMMITMENT_SIZE + STREAM_SALT_SIZE + STREAM_NONCE_PREFIX_SIZE;
}

export function isStreamCipher(cipher: AeadCipher): boolean {
  return STREAM_CIPHERS.has(cipher.id);
}

export function serializeStreamHeader(h: Omit<StreamHeader, 'bytes'>): Buffer {
  const keyIdLength = Buffer.byteLength(h.keyId, 'utf8');
  if (keyIdLength === 0 || keyIdLength > MAX_KEY_ID_BYTES) throw new RangeError('key id must be 1..255 bytes');
  if (!isStreamCipher(h.cipher)) throw new RangeError(`${h.cipher.name} can't encrypt a stream`);
  if (!Number.isInteger(h.chunkSize) || h.chunkSize < 1 || h.chunkSize > MAX_STREAM_CHUNK_SIZE) throw new RangeError('bad chunk size');
  const header = Buffer.alloc(streamHeaderSize(keyIdLength));
  header[0] = STREAM_FORMAT;
  header[1] = h.cipher.id;
  header[2] = 0;
  header.writeUInt32BE(h.chunkSize, 3);
  header[7] = keyIdLength;
  let offset = FIXED_PREFIX + header.write(h.keyId, FIXED_PREFIX, keyIdLength, 'utf8');
  offset += h.commitment.copy(header, offset);
  offset += h.salt.copy(header, offset);
  h.noncePrefix.copy(header, offset);
  return header;
}

/**
 * How many bytes the header needs, once its first 8 bytes are in: `undefined` while fewer are
 * available, `-1` when what is there can't start a stream header.
 */
export function pendingStreamHeaderSize(start: Buffer): number | undefined {
  if (start.length >= 1 && start[0] !== STREAM_FORMAT) return -1;
  if (start.length < FIXED_PREFIX) return undefined;
  if (start[7] === 0) return -1;
  return streamHeaderSize(start[7]);
}

/** Parses a complete header without trusting it: `undefined` for anything malformed. */
export function parseStreamHeader(bytes: Buffer): StreamHeader | undefined {
  if (bytes.length < FIXED_PREFIX || bytes[0] !== STREAM_FORMAT || bytes[2] !== 0) return undefined;
  const cipher = aeadById(bytes[1]);
  if (!cipher || !isStreamCipher(cipher)) return undefined;
  const chunkSize = bytes.readUInt32BE(3);
  if (chunkSize < 1 || chunkSize > MAX_STREAM_CHUNK_SIZE) return undefined;
  const keyIdLength = bytes[7];
  if (keyIdLength === 0 || bytes.length !== streamHeaderSize(keyIdLength)) return undefined;
  const keyIdBytes = bytes.subarray(FIXED_PREFIX, FIXED_PREFIX + keyIdLength);
  const keyId = keyIdBytes.toString('utf8');
  // One encoding per key id (the header is authenticated as bytes).
  if (!Buffer.from(keyId, 'utf8').equals(keyIdBytes)) return undefined;
  const commitmentStart = FIXED_PREFIX + keyIdLength;
  const saltStart = commitmentStart + COMMITMENT_SIZE;
  const prefixStart = saltStart + STREAM_SALT_SIZE;
  return {
    cipher,
    chunkSize,
    keyId,
    commitment: bytes.subarray(commitmentStart, saltStart),
    salt: bytes.subarray(saltStart, prefixStart),
    noncePrefix: bytes.subarray(prefixStart, prefixStart + STREAM_NONCE_PREFIX_SIZE),
    bytes,
  };
}

/** The nonce of chunk `index`: prefix ‖ uint32 big-endian index ‖ last-chunk flag. */
export function chunkNonce(noncePrefix: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.allocUnsafe(STREAM_NONCE_PREFIX_SIZE + 5);
  noncePrefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, STREAM_NONCE_PREFIX_SIZE);
  nonce[STREAM_NONCE_PREFIX_SIZE + 4] = last ? 1 : 0;
  return nonce;
}
