import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { FileKeyStore } from 'nestjs-encryption';

import { loadDemoConfig } from './demo.config.js';
import { createEncryptionOptions } from './encryption-options.factory.js';

describe('demo master key', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'demo-master-key-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const env = (extra: NodeJS.ProcessEnv = {}) =>
    loadDemoConfig({
      KEY_STORE_PATH: join(dir, 'keyring.json'),
      DEV_MASTER_KEY_PATH: join(dir, 'dev-master-key'),
      ...extra,
    });

  it('outside production, creates a development master key file (mode 0600) once, warns, and reuses it', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const first = await createEncryptionOptions(env());
      const path = join(dir, 'dev-master-key');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')).toHaveLength(32);
      expect(first.masterKey).toBe(readFileSync(path, 'utf8').trim());
      expect(first.keyStore).toBeInstanceOf(FileKeyStore);
      expect(warn.mock.calls[0][0]).toMatch(/development master key .*MASTER_KEY/s);

      const second = await createEncryptionOptions(env());
      expect(second.masterKey).toBe(first.masterKey);
    } finally {
      warn.mockRestore();
    }
  });

  it('with NODE_ENV=production, refuses to start without an explicit master key and writes no key file', async () => {
    await expect(createEncryptionOptions(env({ NODE_ENV: 'production', DEMO_ADMIN_TOKEN: 't' }))).rejects.toThrow(
      'NODE_ENV=production needs MASTER_KEY (32 bytes, base64) or MASTER_KEY_PASSPHRASE',
    );
    expect(() => statSync(join(dir, 'dev-master-key'))).toThrow();
  });

  it('with NODE_ENV=production, uses the configured master key', async () => {
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const options = await createEncryptionOptions(
      env({ NODE_ENV: 'production', DEMO_ADMIN_TOKEN: 't', MASTER_KEY: masterKey }),
    );
    expect(options.masterKey).toBe(masterKey);
    expect(() => statSync(join(dir, 'dev-master-key'))).toThrow();
  });
});
