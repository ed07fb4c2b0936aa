import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The shared, read-only test vectors live beside the repository: `../shared/vectors/`. */
export const VECTORS_DIR = resolve(process.cwd(), '..', 'shared', 'vectors');

/** Parses one vector file, e.g. `loadVectors('wycheproof/aes_gcm_test.json')`. */
export function loadVectors<T = any>(relativePath: string): T {
  return JSON.parse(readFileSync(resolve(VECTORS_DIR, relativePath), 'utf8')) as T;
}

export const hex = (value: string): Buffer => Buffer.from(value, 'hex');
