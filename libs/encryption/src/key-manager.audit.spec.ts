import 'reflect-metadata';

import { randomBytes } from 'node:crypto';

import { Test } from '@nestjs/testing';

import type { AuditEvent, EncryptionModuleOptions } from './index.js';
import { EncryptionEvents, EncryptionModule, EncryptionService, KeyManagerService } from './index.js';

async function boot(options: EncryptionModuleOptions = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [EncryptionModule.forRoot({ enableAsymmetric: false, ...options })],
  }).compile();
  moduleRef.useLogger(false);
  await moduleRef.init();
  const audits: AuditEvent[] = [];
  moduleRef.get(EncryptionEvents).subscribe((event) => event.type === 'audit' && audits.push(event));
  return { moduleRef, keys: moduleRef.get(KeyManagerService), encryption: moduleRef.get(EncryptionService), audits };
}

describe('KeyManagerService usage-triggered rotation and audit events', () => {
  it('rotates at the next tick once the active key made maxEncryptionsPerKey encryptions', async () => {
    const { moduleRef, keys, encryption } = await boot({ maxEncryptionsPerKey: 5 });
    const first = keys.activeKey.id;
    for (let i = 0; i < 4; i++) await encryption.encrypt(`v${i}`);
    await keys.tick();
    expect(keys.activeKey.id).toBe(first);
    const last = await encryption.encrypt('fifth');
    await keys.tick();
    expect(keys.activeKey.id).not.toBe(first);
    await expect(encryption.decrypt(last)).resolves.toBe('fifth');
    await moduleRef.close();
  });

  it('audits one burst when failed decryptions reach the threshold within the window', async () => {
    const { moduleRef, encryption, audits } = await boot({
      decryptionFailureBurst: { threshold: 3, windowMs: 60_000 },
    });
    for (let i = 0; i < 5; i++) await encryption.decrypt('not-a-ciphertext!').catch(() => undefined);
    const bursts = audits.filter((event) => event.action === 'decryption-failures-burst');
    expect(bursts).toHaveLength(1);
    expect(bursts[0].details).toEqual({ failures: 3, windowMs: 60_000 });
    await moduleRef.close();
  });

  it('audits a master key rewrap with counts only, never key material', async () => {
    const { moduleRef, keys, audits } = await boot();
    const newMasterKey = randomBytes(32);
    await keys.rewrapMasterKey(newMasterKey);
    const rewraps = audits.filter((event) => event.action === 'master-key-rewrapped');
    expect(rewraps).toHaveLength(1);
    expect(rewraps[0].details).toMatchObject({ keys: 1 });
    const text = JSON.stringify(rewraps);
    expect(text).not.toContain(newMasterKey.toString('base64'));
    expect(text).not.toContain(newMasterKey.toString('hex'));
    await moduleRef.close();
  });
});
