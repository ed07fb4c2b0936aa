import { randomBytes } from 'node:crypto';

import { jest } from '@jest/globals';
import { ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';
import type { EncryptionModuleOptions } from 'nestjs-encryption';
import {
  DecryptionError,
  EncryptionModule,
  EncryptionService,
  InMemoryKeyStore,
  KeyManagerService,
} from 'nestjs-encryption';
import { EncryptionHealthIndicator, EncryptionHealthModule } from 'nestjs-encryption/health';

import { CapturingLogger } from '../../../../test/fixtures/operations/capturing-logger.js';
import { FaultyKeyStore } from '../../../../test/fixtures/operations/faulty-key-store.js';
import { ManualClock } from '../../../../test/fixtures/operations/manual-clock.js';

const DAY = 24 * 60 * 60 * 1000;
const INTERVAL = 10 * DAY;
const PROBE = 'nestjs-encryption health probe';

describe('EncryptionHealthIndicator', () => {
  const open: TestingModule[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((module) => module.close()));
  });

  async function boot(options: EncryptionModuleOptions = {}, { init = true } = {}) {
    const clock = new ManualClock();
    const store = (options.keyStore as FaultyKeyStore | undefined) ?? new FaultyKeyStore();
    const masterKey = randomBytes(32);
    const module = await Test.createTestingModule({
      imports: [
        TerminusModule.forRoot({ logger: false }),
        EncryptionModule.forRoot({
          isGlobal: true,
          clock,
          keyStore: store,
          masterKey,
          keyRotationInterval: INTERVAL,
          ...options,
        }),
        EncryptionHealthModule,
      ],
    })
      .setLogger(new CapturingLogger())
      .compile();
    if (init) await module.init();
    open.push(module);
    const indicator = module.get(EncryptionHealthIndicator);
    const health = module.get(HealthCheckService);
    return {
      clock,
      store,
      masterKey,
      indicator,
      keys: module.get(KeyManagerService),
      encryption: module.get(EncryptionService),
      check: (gracePeriodMs?: number, storeTimeoutMs?: number) =>
        health.check([() => indicator.isHealthy('encryption', { gracePeriodMs, storeTimeoutMs })]),
    };
  }

  /** The body Terminus sends with its 503. */
  async function failure(check: Promise<unknown>): Promise<Record<string, any>> {
    const error = await check.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    return (error as ServiceUnavailableException).getResponse() as Record<string, any>;
  }

  it('is up with the active key id, version and age after a round trip', async () => {
    const { clock, keys, check } = await boot();
    clock.advance(DAY);
    const result = await check();
    expect(result).toEqual({
      status: 'ok',
      info: { encryption: expect.any(Object) },
      error: {},
      details: { encryption: expect.any(Object) },
    });
    expect(result.details.encryption).toEqual({
      status: 'up',
      keyId: keys.activeKey.id,
      keyVersion: 1,
      keyCreatedAt: keys.activeKey.createdAt.toISOString(),
      keyAgeMs: DAY,
      keyRotationIntervalMs: INTERVAL,
      rotationDue: false,
    });
    // The probe really went through the key ring's active key.
    expect(keys.activeKey.usage).toMatchObject({ encryptions: 1, decryptions: 1 });
  });

  it('never shows key bytes or the probe plaintext', async () => {
    const { store, masterKey, check, clock } = await boot();
    clock.advance(INTERVAL + INTERVAL / 10 + 1);
    const up = JSON.stringify(await check(DAY * 365));
    const down = JSON.stringify(await failure(check()));
    for (const text of [up, down]) {
      expect(text).not.toContain(PROBE);
      expect(text).not.toContain('probe');
      for (const secret of [masterKey.toString('hex'), masterKey.toString('base64'), ...(await store.wrappedKeys())]) {
        expect(text).not.toContain(secret);
      }
    }
  });

  it('stays up, flagged rotationDue, while an overdue key is within the grace period', async () => {
    const { clock, check } = await boot();
    clock.advance(INTERVAL + DAY);
    const result = await check(DAY);
    expect(result.details.encryption).toMatchObject({ status: 'up', rotationDue: true, keyAgeMs: INTERVAL + DAY });
  });

  it('is down once the key is older than keyRotationInterval plus the grace period', async () => {
    const { clock, keys, check } = await boot();
    clock.advance(INTERVAL + DAY + 1);
    const body = await failure(check(DAY));
    expect(body.status).toBe('error');
    expect(body.error.encryption).toEqual({
      status: 'down',
      keyId: keys.activeKey.id,
      keyVersion: 1,
      keyCreatedAt: keys.activeKey.createdAt.toISOString(),
      keyAgeMs: INTERVAL + DAY + 1,
      keyRotationIntervalMs: INTERVAL,
      rotationDue: true,
      reason: `The active key is ${INTERVAL + DAY + 1} ms old, past keyRotationInterval (${INTERVAL} ms) plus the ${DAY} ms grace period: keys are not being rotated`,
    });

    // Rotating fixes it.
    await keys.rotate();
    expect((await check(DAY)).details.encryption).toMatchObject({ status: 'up', keyVersion: 2, keyAgeMs: 0 });
  });

  it('defaults the grace period to a tenth of keyRotationInterval, or two scheduled checks when larger', async () => {
    const tenth = await boot();
    tenth.clock.advance(INTERVAL + INTERVAL / 10);
    expect((await tenth.check()).status).toBe('ok');
    tenth.clock.advance(1);
    expect((await failure(tenth.check())).error.encryption.reason).toContain(
      `plus the ${INTERVAL / 10} ms grace period`,
    );

    const checks = await boot({ keyRotationInterval: 1000, scheduledRotation: { checkIntervalMs: 400 } });
    checks.clock.advance(1000 + 800);
    expect((await checks.check()).status).toBe('ok');
    checks.clock.advance(1);
    expect((await failure(checks.check())).error.encryption.reason).toContain('plus the 800 ms grace period');
  });

  it('is down with a generic reason when the key store throws', async () => {
    const { store, check } = await boot();
    store.unreachable = true;
    const body = await failure(check());
    expect(body.error.encryption).toMatchObject({
      status: 'down',
      keyVersion: 1,
      reason: 'The key store is unreachable',
    });
    expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');

    store.unreachable = false;
    expect((await check()).status).toBe('ok');
  });

  it('is down when the key store does not answer in time', async () => {
    const { store, check } = await boot();
    store.hang = true;
    const started = performance.now();
    const body = await failure(check(undefined, 50));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(body.error.encryption.reason).toBe('The key store did not answer within 50 ms');
  });

  it('is down when the key store has lost the key ring', async () => {
    const { store, check } = await boot();
    store.emptyLoads = true;
    expect((await failure(check())).error.encryption.reason).toBe('The key store holds no key ring');
  });

  it("uses the store's ping() when it has one", async () => {
    const store = new FaultyKeyStore({ ping: true });
    const { check } = await boot({ keyStore: store });
    const loadsAtBoot = store.loads;
    expect((await check()).status).toBe('ok');
    expect(store.pings).toBe(1);
    expect(store.loads).toBe(loadsAtBoot);

    store.unreachable = true;
    const body = await failure(check());
    expect(body.error.encryption.reason).toBe('The key store is unreachable');
    expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');
    expect(store.loads).toBe(loadsAtBoot);
  });

  it('is down when the round trip fails, naming only the error code', async () => {
    const { encryption, check } = await boot();
    // Fault injection on the real service: decryption breaking is what the self-test exists to catch.
    const decrypt = jest.spyOn(encryption, 'decrypt').mockRejectedValueOnce(new DecryptionError());
    expect((await failure(check())).error.encryption).toMatchObject({
      status: 'down',
      reason: 'The encryption self-test failed (DECRYPTION_FAILED)',
    });
    decrypt.mockResolvedValueOnce('something else');
    expect((await failure(check())).error.encryption.reason).toBe(
      'The encryption self-test decrypted to different data',
    );
    decrypt.mockRestore();
    expect((await check()).status).toBe('ok');
  });

  it('reports every problem at once', async () => {
    const { clock, store, check } = await boot();
    clock.advance(2 * INTERVAL);
    store.unreachable = true;
    const { reason } = (await failure(check(DAY))).error.encryption;
    expect(reason).toMatch(/^The active key is \d+ ms old, .*; The key store is unreachable$/);
  });

  it('reports instances sharing the store that hold another ring revision (details only, still up)', async () => {
    const store = new InMemoryKeyStore();
    const { indicator, keys } = await boot({ keyStore: store as unknown as FaultyKeyStore });
    await keys.rotate();
    // Another instance that still holds revision 1 after this one moved on.
    await store.heartbeat({ instanceId: 'lagging-instance', revision: 1, at: new Date().toISOString() }, 60_000);
    const result = await indicator.isHealthy('encryption');
    expect(result.encryption).toMatchObject({
      status: 'up',
      ringRevision: keys.revision,
      liveInstances: 2,
      disagreeingInstances: [{ instanceId: 'lagging-instance', revision: 1 }],
    });
    // Once it catches up, nobody disagrees.
    await store.heartbeat(
      { instanceId: 'lagging-instance', revision: keys.revision, at: new Date().toISOString() },
      60_000,
    );
    expect((await indicator.isHealthy('encryption')).encryption).toMatchObject({ disagreeingInstances: [] });
  });

  it('is down before the key ring is loaded', async () => {
    const { indicator } = await boot({}, { init: false });
    await expect(indicator.isHealthy('crypto')).resolves.toEqual({
      crypto: { status: 'down', reason: 'The key ring is not loaded' },
    });
  });
});
