import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';

/**
 * Fernet tokens (https://github.com/fernet/spec), compatible with Python's `cryptography.fernet`.
 *
 * ```
 * offset  size  field
 * 0       1     version (0x80)
 * 1       8     timestamp: Unix seconds, 64-bit big-endian
 * 9       16    IV
 * 25      N     AES-128-CBC ciphertext with PKCS#7 padding (N a non-zero multiple of 16)
 * 25+N    32    HMAC-SHA256 of everything before it, under the signing key
 * ```
 * The token is that byte string as url-safe base64 with padding.
 */

/**
 * A Fernet key: the 44-character url-safe base64 text (with padding) that Python's `Fernet` takes,
 * or its 32 raw bytes. The first 16 bytes sign, the last 16 encrypt.
 */
export type FernetKey = string | Uint8Array;

export interface FernetEncryptOptions {
  /** The token's timestamp. @default the current time */
  now?: Date;
  /** Only for known-answer tests: a fixed IV reused across tokens leaks plaintext equality. @default 16 random bytes */
  iv?: Uint8Array;
}

export interface FernetDecryptOptions {
  /**
   * Maximum token age in seconds. When set, tokens older than this and tokens stamped more than
   * 60 s in the future are rejected, as in Python's `Fernet.decrypt(token, ttl)`.
   * @default no age limit (the timestamp is then not checked at all, as in Python)
   */
  ttlSeconds?: number;
  /** The verifier's clock. @default the current time */
  now?: Date;
}

const VERSION = 0x80;
const KEY_SIZE = 32;
const IV_SIZE = 16;
const BLOCK_SIZE = 16;
const HMAC_SIZE = 32;
const HEADER_SIZE = 1 + 8 + IV_SIZE;
const MIN_TOKEN_SIZE = HEADER_SIZE + BLOCK_SIZE + HMAC_SIZE;
/** Python's `_MAX_CLOCK_SKEW`: how far in the future a token may be stamped when a TTL applies. */
const MAX_CLOCK_SKEW_SECONDS = 60n;
const PADDED_BASE64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

interface ParsedKey {
  signingKey: Buffer;
  encryptionKey: Buffer;
}

interface ParsedToken {
  timestamp: bigint;
  bytes: Buffer;
}

/** A new random key as url-safe base64 with padding, the form Python's `Fernet.generate_key()` returns. */
export function generateFernetKey(): string {
  return encodePaddedBase64Url(randomBytes(KEY_SIZE));
}

/** 32 key bytes as the url-safe base64 text with padding that Python's `Fernet(key)` takes. */
export function encodeFernetKey(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_SIZE) {
    throw new EncryptionInputError(MESSAGES.INVALID_FERNET_KEY);
  }
  return encodePaddedBase64Url(Buffer.from(bytes));
}

/** Whether `key` is a usable Fernet key, without throwing. */
export function isFernetKey(key: unknown): key is FernetKey {
  return keyBytes(key) !== undefined;
}

/** Encrypts `plaintext` into a token signed and encrypted with `key`. */
export function fernetEncrypt(key: FernetKey, plaintext: Uint8Array, options: FernetEncryptOptions = {}): string {
  const parsed = parseKey(key);
  if (!(plaintext instanceof Uint8Array)) throw new EncryptionInputError(MESSAGES.NOT_BYTES);
  if (options.iv !== undefined && (!(options.iv instanceof Uint8Array) || options.iv.length !== IV_SIZE)) {
    throw new EncryptionInputError(MESSAGES.INVALID_FERNET_IV);
  }
  const timestamp = options.now === undefined ? currentSeconds() : toSeconds(options.now);
  return seal(parsed, plaintext, timestamp, options.iv ?? randomBytes(IV_SIZE));
}

/**
 * Decrypts a token with whichever of `keys` made it (Python's `MultiFernet` semantics; a single
 * key works too). Every problem with the token, including an expired TTL, is a `DecryptionError`
 * with the one generic message; only unusable keys or options are `EncryptionInputError`s.
 */
export function fernetDecrypt(keys: FernetKey | readonly FernetKey[], token: string, options: FernetDecryptOptions = {}): Buffer {
  return unseal(parseKeys(keys), token, options).plaintext;
}

/**
 * Verifies the token like `fernetDecrypt` and returns the time it was made (Python's
 * `extract_timestamp`): the timestamp is authenticated, so it is trustworthy only after this check.
 */
export function fernetTimestamp(keys: FernetKey | readonly FernetKey[], token: string): Date {
  return new Date(Number(unseal(parseKeys(keys), token, {}).timestamp) * 1000);
}

/**
 * Re-encrypts a token made with any of `keys` under `keys[0]`, keeping its original timestamp so a
 * TTL still counts from when the data was first encrypted (Python's `MultiFernet.rotate`).
 */
export function fernetRotate(keys: readonly FernetKey[], token: string): string {
  const parsed = parseKeys(keys);
  const { plaintext, timestamp } = unseal(parsed, token, {});
  return seal(parsed[0], plaintext, timestamp, randomBytes(IV_SIZE));
}

function seal(key: ParsedKey, plaintext: Uint8Array, timestamp: bigint, iv: Uint8Array): string {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = VERSION;
  header.writeBigUInt64BE(timestamp, 1);
  header.set(iv, 9);
  const cipher = createCipheriv('aes-128-cbc', key.encryptionKey, iv); // PKCS#7 padding is Node's default
  const body = Buffer.concat([header, cipher.update(plaintext), cipher.final()]);
  const mac = createHmac('sha256', key.signingKey).update(body).digest();
  return encodePaddedBase64Url(Buffer.concat([body, mac]));
}

function unseal(keys: ParsedKey[], token: string, options: FernetDecryptOptions): { plaintext: Buffer; timestamp: bigint } {
  const ttl = options.ttlSeconds;
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl >= 0)) {
    throw new EncryptionInputError(MESSAGES.INVALID_FERNET_TTL);
  }
  const now = options.now === undefined ? currentSeconds() : toSeconds(options.now);
  const parsed = parseToken(token);
  if (!parsed) throw new DecryptionError();
  for (const key of keys) {
    const plaintext = open(key, parsed.bytes);
    if (!plaintext) continue;
    if (ttl !== undefined && !isFresh(parsed.timestamp, BigInt(ttl), now)) break;
    return { plaintext, timestamp: parsed.timestamp };
  }
  // No cause attached: which check failed must stay unobservable.
  throw new DecryptionError();
}

function isFresh(timestamp: bigint, ttl: bigint, now: bigint): boolean {
  return timestamp + ttl >= now && timestamp <= now + MAX_CLOCK_SKEW_SECONDS;
}

/** Structural checks only; nothing in the token is trusted until its HMAC verifies in `open`. */
function parseToken(token: unknown): ParsedToken | undefined {
  if (typeof token !== 'string') return undefined;
  const bytes = decodePaddedBase64Url(token);
  if (!bytes || bytes.length < MIN_TOKEN_SIZE || bytes[0] !== VERSION) return undefined;
  if ((bytes.length - HEADER_SIZE - HMAC_SIZE) % BLOCK_SIZE !== 0) return undefined;
  return { timestamp: bytes.readBigUInt64BE(1), bytes };
}

/** The plaintext, or `undefined` when this key didn't make the token. The MAC is checked before any decryption. */
function open(key: ParsedKey, bytes: Buffer): Buffer | undefined {
  const macStart = bytes.length - HMAC_SIZE;
  const expected = createHmac('sha256', key.signingKey).update(bytes.subarray(0, macStart)).digest();
  if (!timingSafeEqual(expected, bytes.subarray(macStart))) return undefined;
  try {
    const decipher = createDecipheriv('aes-128-cbc', key.encryptionKey, bytes.subarray(9, HEADER_SIZE));
    return Buffer.concat([decipher.update(bytes.subarray(HEADER_SIZE, macStart)), decipher.final()]);
  } catch {
    return undefined; // bad padding under a valid MAC: only the key holder could have made it
  }
}

function parseKeys(keys: FernetKey | readonly FernetKey[]): ParsedKey[] {
  const list = Array.isArray(keys) ? (keys as readonly FernetKey[]) : [keys as FernetKey];
  if (list.length === 0) throw new EncryptionInputError(MESSAGES.NO_FERNET_KEYS);
  return list.map(parseKey);
}

function parseKey(key: FernetKey): ParsedKey {
  const bytes = keyBytes(key);
  if (!bytes) throw new EncryptionInputError(MESSAGES.INVALID_FERNET_KEY);
  return { signingKey: bytes.subarray(0, 16), encryptionKey: bytes.subarray(16) };
}

function keyBytes(key: unknown): Buffer | undefined {
  if (typeof key === 'string') {
    const bytes = decodePaddedBase64Url(key);
    return bytes?.length === KEY_SIZE ? bytes : undefined;
  }
  if (key instanceof Uint8Array && key.length === KEY_SIZE) return Buffer.from(key); // a copy the caller can't mutate
  return undefined;
}

/**
 * Strict url-safe base64 with padding: only the alphabet, correct padding, and zero trailing bits,
 * so every token has exactly one text form (Node's own decoder silently skips bad characters).
 */
function decodePaddedBase64Url(text: string): Buffer | undefined {
  if (!PADDED_BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return encodePaddedBase64Url(bytes) === text ? bytes : undefined;
}

function encodePaddedBase64Url(bytes: Buffer): string {
  const text = bytes.toString('base64url');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
}

function toSeconds(date: Date): bigint {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) throw new EncryptionInputError(MESSAGES.INVALID_FERNET_TIME);
  return BigInt(Math.floor(ms / 1000));
}

function currentSeconds(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}
