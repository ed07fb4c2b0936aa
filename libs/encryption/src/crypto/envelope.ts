import type { AeadCipher } from './aead.js';
import { aeadById } from './aead.js';
import { COMMITMENT_SIZE } from './data-key.js';

/**
 * The native ciphertext envelope, version 1 (docs/FORMAT.md is the normative description).
 *
 * ```
 * offset  size  field
 * 0       1     format version (0x01)
 * 1       1     algorithm id (1 AES-256-GCM, 2 ChaCha20-Poly1305, 3 AES-256-CBC-HMAC-SHA256)
 * 2       1     flags: bits 0-1 payload type, bits 2-3 compression codec, bits 4-7 zero
 * 3       1     key id length L (1..255)
 * 4       L     key id (UTF-8)
 * 4+L     32    key commitment
 * 36+L    N     nonce / IV (12 bytes, or 16 for CBC)
 * ...     ...   ciphertext
 * end-T   T     tag (16 bytes, or 32 for CBC-HMAC)
 * ```
 * Everything before the ciphertext is the header, and the header is authenticated as AAD.
 */
export const FORMAT_VERSION = 1;

export enum PayloadType {
  Bytes = 0,
  String = 1,
  Json = 2,
}

export enum CompressionCodec {
  None = 0,
  Gzip = 1,
  Brotli = 2,
}

export interface EnvelopeHeader {
  cipher: AeadCipher;
  payloadType: PayloadType;
  codec: CompressionCodec;
  keyId: string;
  commitment: Buffer;
  nonce: Buffer;
}

export interface Envelope extends EnvelopeHeader {
  /** The serialized header bytes exactly as they appear on the wire (the AAD). */
  header: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

const FIXED_PREFIX = 4;
const MAX_KEY_ID_BYTES = 255;

export function serializeHeader(h: EnvelopeHeader): Buffer {
  // Encoded straight into the header (same UTF-8 as Buffer.from) rather than through a temporary Buffer.
  const keyIdLength = Buffer.byteLength(h.keyId, 'utf8');
  if (keyIdLength === 0 || keyIdLength > MAX_KEY_ID_BYTES) throw new RangeError('key id must be 1..255 bytes');
  const header = Buffer.allocUnsafe(FIXED_PREFIX + keyIdLength + COMMITMENT_SIZE + h.nonce.length);
  header[0] = FORMAT_VERSION;
  header[1] = h.cipher.id;
  header[2] = h.payloadType | (h.codec << 2);
  header[3] = keyIdLength;
  let offset = FIXED_PREFIX + header.write(h.keyId, FIXED_PREFIX, keyIdLength, 'utf8');
  offset += h.commitment.copy(header, offset);
  h.nonce.copy(header, offset);
  return header;
}

export function serializeEnvelope(header: Buffer, ciphertext: Buffer, tag: Buffer): Buffer {
  return Buffer.concat([header, ciphertext, tag], header.length + ciphertext.length + tag.length);
}

/**
 * Parses without trusting anything: returns `undefined` for any structural problem so that the
 * caller raises the one generic decryption error.
 */
export function parseEnvelope(bytes: Buffer): Envelope | undefined {
  if (bytes.length < FIXED_PREFIX || bytes[0] !== FORMAT_VERSION) return undefined;
  const cipher = aeadById(bytes[1]);
  const flags = bytes[2];
  const keyIdLength = bytes[3];
  if (!cipher || flags >> 4 !== 0 || keyIdLength === 0) return undefined;
  const payloadType = flags & 0b11;
  const codec = (flags >> 2) & 0b11;
  if (!(payloadType in PayloadType) || !(codec in CompressionCodec)) return undefined;

  const commitmentStart = FIXED_PREFIX + keyIdLength;
  const nonceStart = commitmentStart + COMMITMENT_SIZE;
  const bodyStart = nonceStart + cipher.nonceSize;
  if (bytes.length < bodyStart + cipher.tagSize) return undefined;

  const keyId = decodeKeyId(bytes, commitmentStart);
  if (keyId === undefined) return undefined;

  const tagStart = bytes.length - cipher.tagSize;
  return {
    cipher,
    payloadType,
    codec,
    keyId,
    commitment: bytes.subarray(commitmentStart, nonceStart),
    nonce: bytes.subarray(nonceStart, bodyStart),
    header: bytes.subarray(0, bodyStart),
    ciphertext: bytes.subarray(bodyStart, tagStart),
    tag: bytes.subarray(tagStart),
  };
}

/** The key id, or `undefined` when its bytes aren't canonical UTF-8. */
function decodeKeyId(bytes: Buffer, end: number): string | undefined {
  // ASCII is canonical UTF-8 as it is, so the common case needs no re-encoding to compare.
  let i = FIXED_PREFIX;
  while (i < end && bytes[i] < 0x80) i++;
  if (i === end) return bytes.toString('latin1', FIXED_PREFIX, end);
  const keyIdBytes = bytes.subarray(FIXED_PREFIX, end);
  const keyId = keyIdBytes.toString('utf8');
  // Reject non-canonical UTF-8 so a key id has exactly one encoding (the header is MACed as bytes).
  if (Buffer.byteLength(keyId) !== keyIdBytes.length || !Buffer.from(keyId).equals(keyIdBytes)) return undefined;
  return keyId;
}
