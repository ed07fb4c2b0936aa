import { PayloadType } from './envelope.js';

/** Any value JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What `encrypt()` accepts and `decrypt()` gives back, with the same type it went in with. */
export type Plaintext = string | Buffer | Uint8Array | JsonValue;

export interface EncodedPlaintext {
  type: PayloadType;
  bytes: Buffer;
}

/** Thrown for values with no faithful byte encoding; the service turns it into `EncryptionInputError`. */
export class UnencodableValueError extends Error {}

/**
 * Turns a value into bytes plus the type tag that restores it. The type comes from the value, never
 * from guessing at decryption time.
 */
export function encodePlaintext(value: Plaintext): EncodedPlaintext {
  if (typeof value === 'string') {
    // A string with a lone surrogate has no UTF-8 form; JSON escapes it losslessly instead.
    return value.isWellFormed()
      ? { type: PayloadType.String, bytes: Buffer.from(value, 'utf8') }
      : { type: PayloadType.Json, bytes: Buffer.from(JSON.stringify(value), 'utf8') };
  }
  if (Buffer.isBuffer(value)) return { type: PayloadType.Bytes, bytes: value };
  if (value instanceof Uint8Array) {
    return { type: PayloadType.Bytes, bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'object') {
    return { type: PayloadType.Json, bytes: Buffer.from(stringifyJson(value), 'utf8') };
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new UnencodableValueError('non-finite number');
    return { type: PayloadType.Json, bytes: Buffer.from(JSON.stringify(value), 'utf8') };
  }
  throw new UnencodableValueError(typeof value);
}

/** `JSON.stringify` for objects, whose nested values can still have no JSON form. */
function stringifyJson(value: JsonValue): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    // A nested BigInt or a circular reference. The original error is dropped: a throwing `toJSON` could quote the data.
    throw new UnencodableValueError(error instanceof TypeError && error.message.includes('BigInt') ? 'bigint' : 'object');
  }
  // `toJSON` can make a top-level object disappear (`undefined`), which has no byte form either.
  if (text === undefined) throw new UnencodableValueError('undefined');
  // JSON writes a nested NaN/Infinity (or an array's undefined) as null, which would decrypt to a different
  // value; only output containing "null" can hide one, so the common case skips the walk.
  if (text.includes('null')) {
    const lossy = findLossyValue(value);
    if (lossy) throw new UnencodableValueError(lossy);
  }
  return text;
}

/** The kind of the first nested value JSON would silently turn into null, if any. */
function findLossyValue(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'non-finite number';
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const kind = item === undefined || typeof item === 'function' || typeof item === 'symbol' ? typeof item : findLossyValue(item);
      if (kind) return kind;
    }
    return undefined;
  }
  for (const item of Object.values(value)) {
    const kind = findLossyValue(item);
    if (kind) return kind;
  }
  return undefined;
}

export function decodePlaintext(type: PayloadType, bytes: Buffer): Plaintext {
  switch (type) {
    case PayloadType.Bytes:
      return bytes;
    case PayloadType.String:
      return bytes.toString('utf8');
    case PayloadType.Json:
      return JSON.parse(bytes.toString('utf8')) as JsonValue;
  }
}
