const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict, canonical base64url (no padding) decoding: Node's own decoder silently skips invalid
 * characters and ignores the unused low bits of the last character, so one byte string would
 * otherwise have several accepted texts.
 */
export function decodeBase64Url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1 || !zeroTrailingBits(text, text.length % 4)) return undefined;
  return Buffer.from(text, 'base64url');
}

/** Encodes bytes as standard, padded base64 for storing keys and salts. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strictly decodes standard, padded base64; `undefined` when the text isn't canonical base64. */
export function fromBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const data = text.endsWith('==') ? text.length - 2 : text.endsWith('=') ? text.length - 1 : text.length;
  return zeroTrailingBits(text.slice(0, data), data % 4) ? Buffer.from(text, 'base64') : undefined;
}

/** A final group of 2 or 3 characters carries 4 or 2 unused bits, which canonical encoders leave zero. */
function zeroTrailingBits(text: string, finalGroupLength: number): boolean {
  if (finalGroupLength < 2) return true;
  const last = text.charCodeAt(text.length - 1);
  const unusedMask = finalGroupLength === 2 ? 0b1111 : 0b11;
  return (sextet(last) & unusedMask) === 0;
}

function sextet(code: number): number {
  if (code >= 65 && code <= 90) return code - 65; // A-Z
  if (code >= 97 && code <= 122) return code - 71; // a-z
  if (code >= 48 && code <= 57) return code + 4; // 0-9
  return code === 43 || code === 45 ? 62 : 63; // + or -, else / or _
}
