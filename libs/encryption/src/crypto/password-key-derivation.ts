import { pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** A key derived from a password together with the salt needed to derive it again. */
export interface DerivedKey {
  key: Buffer;
  salt: Buffer;
}

/** PBKDF2-HMAC-SHA256 on libuv's thread pool, so hundreds of thousands of iterations never block the event loop. */
export async function deriveKeyFromPassword(
  password: string | Buffer,
  salt: Buffer | undefined,
  options: { iterations: number; keySize: number; saltSize: number },
): Promise<DerivedKey> {
  const usedSalt = salt ?? randomBytes(options.saltSize);
  const key = await pbkdf2Async(password, usedSalt, options.iterations, options.keySize, 'sha256');
  return { key, salt: usedSalt };
}
