import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { UntypedPayloadAs } from '../interfaces/encryption-call-options.interface.js';
import { PayloadType } from './envelope.js';
import type { JsonValue, Plaintext } from './plaintext-codec.js';

/**
 * The formats `decrypt()` reads besides the native envelope, told apart by their first character or
 * byte without parsing (docs/FORMAT.md, "Other formats"):
 *
 * - native: binary starts with 0x01, so its base64url text with `A`;
 * - Fernet: binary starts with 0x80, so its base64url text with `g`;
 * - compact JWE: five base64url segments joined by dots (a dot never appears in the other two).
 */
export type ForeignFormat = 'fernet' | 'jwe';

const NATIVE_TEXT_START = 0x41; // 'A'
const FERNET_TEXT_START = 0x67; // 'g'
const FERNET_VERSION = 0x80;

/** `undefined` for the native format (and for anything unreadable, which the native parser refuses). */
export function foreignFormatOf(input: unknown): ForeignFormat | undefined {
  if (typeof input === 'string') {
    const first = input.charCodeAt(0);
    if (first === NATIVE_TEXT_START) return undefined;
    if (first === FERNET_TEXT_START) return 'fernet';
    return input.includes('.') ? 'jwe' : undefined;
  }
  return input instanceof Uint8Array && input[0] === FERNET_VERSION ? 'fernet' : undefined;
}

/** The `cty` a JWE made here carries for each payload type (RFC 7515 §4.1.10: `application/` may be omitted). */
const CTY_BY_TYPE: Record<PayloadType, string> = {
  [PayloadType.Bytes]: 'octet-stream',
  [PayloadType.String]: 'text/plain;charset=utf-8',
  [PayloadType.Json]: 'json',
};

export function ctyOf(type: PayloadType): string {
  return CTY_BY_TYPE[type];
}

/**
 * The payload type a `cty` records: JSON for `json`, `application/json` and any `+json` type, a string
 * for `text/plain` (UTF-8); `undefined` (untyped) for `octet-stream`, no `cty` or any other value.
 * Case and parameters are ignored.
 */
export function payloadTypeOfCty(cty: unknown): PayloadType | undefined {
  if (typeof cty !== 'string') return undefined;
  let type = cty.split(';')[0].trim().toLowerCase();
  if (!type.includes('/')) type = `application/${type}`;
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) {
    return PayloadType.Json;
  }
  if (type === 'text/plain') return PayloadType.String;
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes an authenticated payload to `type` (or, when untyped, to what the caller asked for). Bytes
 * that aren't what the type promises (invalid UTF-8, invalid JSON) are a `DecryptionError`.
 */
export function decodeForeignPayload(
  bytes: Buffer,
  type: PayloadType | undefined,
  as: UntypedPayloadAs | undefined,
): Plaintext {
  const target = type ?? (as === 'string' ? PayloadType.String : as === 'json' ? PayloadType.Json : PayloadType.Bytes);
  if (target === PayloadType.Bytes) return bytes;
  try {
    const text = UTF8.decode(bytes);
    return target === PayloadType.String ? text : (JSON.parse(text) as JsonValue);
  } catch {
    throw new DecryptionError();
  }
}

const UNTYPED_AS: readonly unknown[] = ['buffer', 'string', 'json'];

/** Refuses an unknown `as` option before any decryption: a caller mistake, not a bad ciphertext. */
export function checkUntypedAs(as: unknown): void {
  if (as !== undefined && !UNTYPED_AS.includes(as)) throw new EncryptionInputError(MESSAGES.INVALID_UNTYPED_AS);
}
