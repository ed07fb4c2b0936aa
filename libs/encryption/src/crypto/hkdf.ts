import { hkdfSync } from 'node:crypto';

/** HKDF-SHA256 (RFC 5869) from `node:crypto`, returned as a Buffer. */
export function hkdfSha256(secret: Buffer, salt: Buffer, info: string | Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, info, length));
}
