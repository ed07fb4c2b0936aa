import { randomBytes } from 'node:crypto';

import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';
import type { EncryptionModuleOptions } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService, KeyManagerService } from 'nestjs-encryption';
import { EncryptionSchedulingModule, KEY_ROTATION_INTERVAL_NAME, KeyRotationScheduler } from 'nestjs-encryption/scheduling';

import { CapturingLogger } from '../../../../test/fixtures/operations/capturing-logger.js';
import { FaultyKeyStore } from '../../../../test/fixtures/operations/faulty-key-store.js';
import { ManualClock } from '../../../../test/fixtures/operations/manual-clock.js';

const HOUR = 60 * 60 * 1000;
const INTERVAL = 24 * HOUR;

describe('KeyRotationScheduler', () => {
  const open: TestingModule[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((module) => module.close()));
  });

  async function boot(options: EncryptionModuleOptions, logger = new CapturingLogger()) {
    const module = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        EncryptionModule.forRoot({ isGlobal: true, keyRotationInterval: INTERVAL, masterKey: randomBytes(32), ...options }),
        EncryptionSchedulingModule,
      ],
    })
      .setLogger(logger)
      .compile();
    await module.init();
    open.push(module);
    return {
      module,
      logger,
      scheduler: module.get(KeyRotationScheduler),
      keys: module.get(KeyManagerService),
      encryption: module.get(EncryptionService),
      registry: module.get(SchedulerRegistry),
    };
  }

  describe('registration', () => {
    it('registers a named interval at the configured cadence and removes it on shutdown', async () => {
      const { module, registry } = await boot({ scheduledRotation: { checkIntervalMs: 12_345 } });
      expect(registry.getIntervals()).toEqual([KEY_ROTATION_INTERVAL_NAME]);
      const timer = registry.getInterval<NodeJS.Timeout>(KEY_ROTATION_INTERVAL_NAME);
      expect((timer as unknown as { _idleTimeout: number })._idleTimeout).toBe(12_345);

      await module.close();
      open.splice(open.indexOf(module), 1);
      expect(registry.doesExist('interval', KEY_ROTATION_INTERVAL_NAME)).toBe(false);
    });

    it('registers nothing and never rotates when disabled', async () => {
      const clock = new ManualClock();
      const store = new FaultyKeyStore();
      const masterKey = randomBytes(32);
      const first = await boot({ clock, keyStore: store, masterKey, scheduledRotation: { enabled: false } });
      clock.advance(10 * INTERVAL);
      await first.module.close();
      open.splice(0);

      // A stale key at boot stays in place too.
      const second = await boot({ clock, keyStore: store, masterKey, scheduledRotation: { enabled: false } });
      expect(second.registry.getIntervals()).toEqual([]);
      // An enabled scheduler's bootstrap check rotates in-memory within milliseconds.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(second.keys.activeKey.version).toBe(1);
    });
  });

  describe('checkRotation()', () => {
    it('leaves a key younger than keyRotationInterval alone', async () => {
      const clock = new ManualClock();
      const { scheduler, keys } = await boot({ clock });
      clock.advance(INTERVAL - 1);
      expect(scheduler.millisecondsUntilRotation()).toBe(1);
      await expect(scheduler.checkRotation()).resolves.toBeUndefined();
      expect(keys.activeKey.version).toBe(1);
    });

    it('rotates exactly once when the key reaches keyRotationInterval, and old ciphertexts stay readable', async () => {
      const clock = new ManualClock();
      const { scheduler, keys, encryption } = await boot({ clock });
      const before = await encryption.encryptToString({ invoice: 17 });
      const oldId = keys.activeKey.id;

      clock.advance(INTERVAL);
      const rotated = await scheduler.checkRotation();
      expect(rotated).toMatchObject({ version: 2, state: 'active', ageMs: 0 });
      expect(keys.activeKey.id).toBe(rotated!.id);
      expect(keys.activeKey.createdAt.getTime()).toBe(clock.now());

      // The new key is young: further checks do nothing until it ages in turn.
      await expect(scheduler.checkRotation()).resolves.toBeUndefined();
      clock.advance(INTERVAL - 1);
      await expect(scheduler.checkRotation()).resolves.toBeUndefined();
      expect(keys.activeKey.version).toBe(2);

      await expect(encryption.decrypt(before)).resolves.toEqual({ invoice: 17 });
      expect(keys.listKeys().map((key) => [key.id, key.state])).toEqual([
        [rotated!.id, 'active'],
        [oldId, 'decrypt-only'],
      ]);
    });

    it('runs one rotation for overlapping checks', async () => {
      const clock = new ManualClock();
      const { scheduler, keys } = await boot({ clock });
      clock.advance(INTERVAL + 1);
      const [a, b, c] = await Promise.all([scheduler.checkRotation(), scheduler.checkRotation(), scheduler.checkRotation()]);
      expect(a?.version).toBe(2);
      expect(b).toBe(a);
      expect(c).toBe(a);
      expect(keys.activeKey.version).toBe(2);
    });

    it('logs a failed rotation without key material and retries it at the next check', async () => {
      const clock = new ManualClock();
      const store = new FaultyKeyStore();
      const masterKey = randomBytes(32);
      const { scheduler, keys, logger } = await boot({ clock, keyStore: store, masterKey, scheduledRotation: { checkIntervalMs: 30_000 } });
      clock.advance(INTERVAL);

      store.failSaves = true;
      await expect(scheduler.checkRotation()).resolves.toBeUndefined();
      expect(keys.activeKey.version).toBe(1);
      const errors = logger.at('error', KeyRotationScheduler.name);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^Scheduled key rotation failed, retrying in 30000 ms: \w+/);

      store.failSaves = false;
      await expect(scheduler.checkRotation()).resolves.toMatchObject({ version: 2 });
      expect(logger.at('log', KeyRotationScheduler.name)).toEqual([
        `Rotated the active encryption key: now ${keys.activeKey.id} (version 2)`,
      ]);

      const logs = logger.text();
      for (const secret of [masterKey.toString('hex'), masterKey.toString('base64'), ...(await store.wrappedKeys())]) {
        expect(logs).not.toContain(secret);
      }
    });

    it('logs a store that fails to load and rotates once it is back', async () => {
      const clock = new ManualClock();
      const store = new FaultyKeyStore();
      const { scheduler, keys, logger } = await boot({ clock, keyStore: store });
      clock.advance(INTERVAL);
      store.unreachable = true;
      await expect(scheduler.checkRotation()).resolves.toBeUndefined();
      expect(logger.at('error', KeyRotationScheduler.name)).toHaveLength(1);
      store.unreachable = false;
      await expect(scheduler.checkRotation()).resolves.toMatchObject({ version: 2 });
      expect(keys.activeKey.version).toBe(2);
    });
  });

  describe('age comes from the stored createdAt, not from process uptime', () => {
    it('rotates right after bootstrap when the stored key is already stale', async () => {
      const clock = new ManualClock();
      const store = new FaultyKeyStore();
      const masterKey = randomBytes(32);
      const first = await boot({ clock, keyStore: store, masterKey });
      const oldId = first.keys.activeKey.id;
      await first.module.close();
      open.splice(0);

      clock.advance(INTERVAL + HOUR); // the service was down while the key expired
      const second = await boot({ clock, keyStore: store, masterKey });
      // The bootstrap check is in flight; a call joins it rather than starting another.
      await expect(second.scheduler.checkRotation()).resolves.toMatchObject({ version: 2 });
      expect(second.keys.activeKey.version).toBe(2);
      expect(second.keys.findKey(oldId)?.state).toBe('decrypt-only');
    });

    it('rotates at the original due time after a restart instead of a full interval later', async () => {
      const clock = new ManualClock();
      const store = new FaultyKeyStore();
      const masterKey = randomBytes(32);
      const first = await boot({ clock, keyStore: store, masterKey });
      await first.module.close();
      open.splice(0);

      clock.advance(INTERVAL - HOUR);
      const second = await boot({ clock, keyStore: store, masterKey });
      expect(second.keys.activeKey.version).toBe(1);
      expect(second.scheduler.millisecondsUntilRotation()).toBe(HOUR);
      clock.advance(HOUR);
      await expect(second.scheduler.checkRotation()).resolves.toMatchObject({ version: 2 });
    });
  });

  it('does not rotate again when another instance sharing the store already did', async () => {
    const clock = new ManualClock();
    const store = new FaultyKeyStore();
    const masterKey = randomBytes(32);
    const a = await boot({ clock, keyStore: store, masterKey });
    const b = await boot({ clock, keyStore: store, masterKey });
    expect(b.keys.activeKey.id).toBe(a.keys.activeKey.id);

    clock.advance(INTERVAL);
    const rotated = await a.scheduler.checkRotation();
    await expect(b.scheduler.checkRotation()).resolves.toBeUndefined();
    expect(b.keys.activeKey.id).toBe(rotated!.id);
    expect(b.keys.listKeys()).toHaveLength(2);
  });
});
