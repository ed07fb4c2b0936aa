import { randomBytes } from 'node:crypto';

import { unwrapKey, wrapKey } from './key-wrap.js';
import { deriveKeyFromPassword } from './password-key-derivation.js';

export const MASTER_KEY_SIZE = 32;
const CHECK_ID = '__master-key-check__';
const CHECK_VALUE = Buffer.from('nestjs-encryption master key check v1');
/** PBKDF2 iterations for a passphrase-derived master key (OWASP 2023 guidance for SHA-256). */
const PASSPHRASE_ITERATIONS = 600_000;

/**
 * A value only the right master key can unwrap. Stored with the ring, it lets a wrong master key be
 * detected at boot from one comparison, before any data key is touched or anything is written.
 */
export function makeMasterKeyCheck(masterKey: Buffer): string {
  return wrapKey(masterKey, CHECK_ID, CHECK_VALUE);
}

export function masterKeyMatches(masterKey: Buffer, check: string): boolean {
  return unwrapKey(masterKey, CHECK_ID, check)?.equals(CHECK_VALUE) ?? false;
}

/** Derives the master key from a passphrase; the salt is random on first use and then read from the store. */
export async function deriveMasterKey(passphrase: string, salt?: Buffer): Promise<{ key: Buffer; salt: Buffer }> {
  return deriveKeyFromPassword(passphrase, salt ?? randomBytes(16), {
    iterations: PASSPHRASE_ITERATIONS,
    keySize: MASTER_KEY_SIZE,
    saltSize: 16,
  });
}
