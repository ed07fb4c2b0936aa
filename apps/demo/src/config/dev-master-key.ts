import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import type { Logger } from '@nestjs/common';

/**
 * Development only: reads the master key from a local file, creating it (mode 0600) on first run, so
 * a fresh clone starts with one command. The file is git-ignored. Never used when NODE_ENV=production.
 */
export function loadOrCreateDevMasterKey(path: string, logger: Logger): string {
  try {
    const existing = readFileSync(path, 'utf8').trim();
    logger.warn(`Using the development master key in ${path}. Set MASTER_KEY for anything but development.`);
    return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomBytes(32).toString('base64');
  writeFileSync(path, key + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  logger.warn(
    `Created a development master key in ${path} (mode 0600, git-ignored). It is for development only: ` +
      'set MASTER_KEY (32 bytes, base64) or MASTER_KEY_PASSPHRASE in production.',
  );
  return key;
}
