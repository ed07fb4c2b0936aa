import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis } from 'ioredis';
import type { AuditEvent, EncryptionModuleOptions, KeyStore } from 'nestjs-encryption';
import { KeyStoreUnavailableError, MasterKeyMismatchError } from 'nestjs-encryption';
import pg from 'pg';

import { CountingKeyStore } from './fixtures/distributed/counting-key-store.js';
import type { StoreKind, StoreSpec } from './fixtures/distributed/open-key-store.js';
import { openKeyStore } from './fixtures/distributed/open-key-store.js';
import { TcpProxy } from './fixtures/distributed/tcp-proxy.js';
import { TestStores } from './fixtures/distributed/test-stores.js';
import type { EncryptionTestApp } from './support/encryption-test-app.js';
import { encryptionTestApps } from './support/encryption-test-app.js';
import { eventually } from './support/key-store-contract.js';
import { POSTGRES_URL, REDIS_URL } from './support/key-store-services.js';

/**
 * What the key ring survives in its store: a wrong master key at boot, and the store going away and
 * coming back while an app encrypts, decrypts and rotates. (A process killed while the file store
 * writes: libs/encryption/src/stores/file-key.store.spec.ts, "writers SIGKILLed at random moments of
 * save loops leave the old or the new ring"; kills during rotation and master key rewrap on PostgreSQL
 * and Redis: distributed-rotation.e2e-spec.ts.)
 */

const MASTER_KEY = randomBytes(32);
const FAST_PROPAGATION = { keyPropagation: { delayMs: 2_000, heartbeatIntervalMs: 100 } };
const stores = new TestStores();
const apps = encryptionTestApps();

afterEach(() => apps.closeAll());
// Whatever happened below, later test files need Redis (and so does the clean-up).
afterAll(async () => {
  await startRedis();
  await stores.cleanup();
}, 40_000);

/** Exactly what the store holds for the ring, as raw text or bytes. */
async function rawRing(spec: StoreSpec): Promise<unknown> {
  switch (spec.kind) {
    case 'postgres': {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const table = `${pg.escapeIdentifier(spec.namespace)}.nestjs_encryption_key_ring`;
        return (await client.query(`SELECT id, revision::text, ring::text, updated_at::text FROM ${table}`)).rows;
      } finally {
        await client.end();
      }
    }
    case 'redis': {
      const redis = new Redis(REDIS_URL);
      try {
        return await redis.hgetall(`${spec.namespace}:ring`);
      } finally {
        redis.disconnect();
      }
    }
    case 'file':
      return readFileSync(join(spec.namespace, 'key-ring.json'));
  }
}

/** Boots `EncryptionModule` on `store`; a failed boot still closes the store's connections. */
async function bootOn(store: KeyStore, options: EncryptionModuleOptions): Promise<EncryptionTestApp> {
  try {
    return await apps.create({ keyStore: store, ...options });
  } catch (error) {
    await store.close?.();
    throw error;
  }
}

describe('a wrong master key at boot', () => {
  it.each<StoreKind>(['postgres', 'redis', 'file'])(
    '%s: fails with MasterKeyMismatchError and leaves the stored ring byte-for-byte unchanged',
    async (kind) => {
      const spec = stores.create(kind);
      const first = await bootOn(openKeyStore(spec), { masterKey: MASTER_KEY, instanceId: 'first' });
      await first.keys.rotate();
      const ciphertext = await first.encryption.encryptToString('kept');
      await first.close();
      const before = await rawRing(spec);
      expect(before).toBeTruthy();

      for (const wrong of [randomBytes(32), randomBytes(32).toString('base64')]) {
        const boot = bootOn(openKeyStore(spec), { masterKey: wrong, instanceId: 'wrong' });
        await expect(boot).rejects.toThrow(MasterKeyMismatchError);
        await expect(boot).rejects.toThrow(
          'The configured master key does not match the key store (wrong key or wrong store); nothing was written',
        );
        expect(await rawRing(spec)).toEqual(before);
      }

      // The right key still opens it, with every key intact.
      const again = await bootOn(openKeyStore(spec), { masterKey: MASTER_KEY.toString('base64'), instanceId: 'again' });
      await expect(again.encryption.decrypt(ciphertext)).resolves.toBe('kept');
      expect(again.keys.listKeys().map((key) => key.version)).toEqual([2, 1]);
    },
  );

  it.each<StoreKind>(['postgres', 'redis'])(
    '%s: a wrong passphrase fails the same way, against the salt stored with the ring',
    async (kind) => {
      const spec = stores.create(kind);
      await (await bootOn(openKeyStore(spec), { masterKeyPassphrase: 'correct horse battery staple' })).close();
      const before = await rawRing(spec);
      await expect(
        bootOn(openKeyStore(spec), { masterKeyPassphrase: 'correct horse battery stapler' }),
      ).rejects.toThrow(MasterKeyMismatchError);
      expect(await rawRing(spec)).toEqual(before);
      await expect(
        bootOn(openKeyStore(spec), { masterKeyPassphrase: 'correct horse battery staple' }),
      ).resolves.toBeDefined();
    },
  );
});

/**
 * Encrypts and decrypts in a loop (a new message, and one made before the loop) until stopped. Every
 * one of these can be served from the loaded ring, so none may fail whatever the store does.
 */
function startTraffic(app: EncryptionTestApp, earlier: Array<{ text: string; plaintext: string }>) {
  let stopped = false;
  let operations = 0;
  const failures: string[] = [];
  const check = async (text: string, plaintext: string) => {
    if ((await app.encryption.decrypt(text)) !== plaintext) throw new Error('wrong plaintext');
  };
  const running = (async () => {
    for (let n = 0; !stopped; n++) {
      try {
        const plaintext = `during ${n}`;
        await check(await app.encryption.encryptToString(plaintext), plaintext);
        const old = earlier[n % earlier.length];
        await check(old.text, old.plaintext);
        operations += 3;
      } catch (error) {
        failures.push((error as { code?: string }).code ?? String(error));
      }
      await sleep(2);
    }
  })();
  return {
    get operations() {
      return operations;
    },
    async stop() {
      stopped = true;
      await running;
      return { operations, failures };
    },
  };
}

/**
 * The store goes away (`cut`) for a while and comes back (`restore`) under a running app: traffic
 * never fails, rotate() rejects while it is away and is done once it is back, and status and audit
 * say what happened.
 */
async function outageScenario(spec: StoreSpec, cut: () => Promise<void>, restore: () => Promise<void>): Promise<void> {
  const app = await bootOn(openKeyStore(spec), {
    masterKey: MASTER_KEY,
    instanceId: `outage-${spec.kind}`,
    ...FAST_PROPAGATION,
  });
  const audits: AuditEvent[] = [];
  app.events.subscribe((event) => {
    if (event.type === 'audit') audits.push(event);
  });
  const earlier = await Promise.all(
    Array.from({ length: 10 }, async (_, n) => ({
      text: await app.encryption.encryptToString(`before ${n}`),
      plaintext: `before ${n}`,
    })),
  );
  const activeBefore = app.keys.activeKey;
  expect(app.keys.storeStatus).toMatchObject({ reachable: true, rotationPending: false });
  const traffic = startTraffic(app, earlier);
  await sleep(100);

  let restored = false;
  await cut();
  try {
    // The next background round (every 100 ms) finds the store gone.
    await eventually(() => expect(app.keys.storeStatus.reachable).toBe(false));
    const down = await app.keys.checkStore();
    expect(down).toMatchObject({ reachable: false, rotationPending: false });
    expect(down.lastError).toMatch(/^[A-Za-z_]+$/);
    expect(audits.filter((event) => event.action === 'store-error')).toHaveLength(1);

    await expect(app.keys.rotate()).rejects.toThrow(KeyStoreUnavailableError);
    expect(app.keys.storeStatus).toMatchObject({ reachable: false, rotationPending: true });
    expect(app.keys.activeKey.id).toBe(activeBefore.id);
    const duringOutage = traffic.operations;
    await sleep(500);
    expect(traffic.operations).toBeGreaterThan(duringOutage);
    expect((await app.keys.checkStore()).reachable).toBe(false);
    await restore();
    restored = true;
  } finally {
    if (!restored) await restore();
  }

  // Same app, no restart: it notices the store is back and performs the pending rotation.
  await eventually(
    () => expect(app.keys.storeStatus).toMatchObject({ reachable: true, rotationPending: false }),
    15_000,
  );
  expect(app.keys.storeStatus.lastError).toBeUndefined();
  expect(app.keys.activeKey.version).toBe(activeBefore.version + 1);
  expect(audits.filter((event) => event.action === 'store-recovered')).toHaveLength(1);
  expect(audits.map((event) => event.action)).toEqual(
    expect.arrayContaining(['store-error', 'store-recovered', 'key-staged', 'key-activated']),
  );
  const stored = (await stores.load(spec))!;
  expect(stored.keys.find((key) => key.state === 'active')!.id).toBe(app.keys.activeKey.id);
  expect(stored.keys.map((key) => key.version).sort()).toEqual([1, 2]);

  await sleep(100);
  const { operations, failures } = await traffic.stop();
  expect(failures).toEqual([]);
  expect(operations).toBeGreaterThan(100);
  // What was made with the new key is readable by a fresh instance.
  const fresh = await bootOn(openKeyStore(spec), { masterKey: MASTER_KEY, instanceId: 'fresh' });
  const after = await app.encryption.encryptToString('after the outage');
  await expect(fresh.encryption.decrypt(after)).resolves.toBe('after the outage');
}

/** Deletes the ring from the store behind the app's back, as a store restarted without persistence would. */
async function wipeRing(spec: StoreSpec): Promise<void> {
  if (spec.kind === 'postgres') {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`DELETE FROM ${pg.escapeIdentifier(spec.namespace)}.nestjs_encryption_key_ring`);
    } finally {
      await client.end();
    }
  } else {
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.del(`${spec.namespace}:ring`)).toBe(1);
    } finally {
      redis.disconnect();
    }
  }
}

describe('a store that has lost the ring', () => {
  it.each<StoreKind>(['postgres', 'redis'])(
    '%s: writes reject with KeyStoreUnavailableError instead of retrying without end; the ring restored, the pending rotation goes through',
    async (kind) => {
      const spec = stores.create(kind);
      const store = new CountingKeyStore(openKeyStore(spec));
      const app = await bootOn(store, { masterKey: MASTER_KEY, instanceId: 'left-empty', ...FAST_PROPAGATION });
      const before = await app.encryption.encryptToString('before');
      const backup = (await stores.load(spec))!;
      await wipeRing(spec);

      const saves = store.calls.save;
      const refused = await app.keys.rotate().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(KeyStoreUnavailableError);
      expect((refused as Error).message).toBe(
        'The key store no longer holds the key ring (wiped, or restarted without persistence); writes wait until it is restored',
      );
      expect(app.keys.storeStatus).toMatchObject({ reachable: true, rotationPending: true });
      await sleep(500);
      // Retried once per background round (100 ms), not as fast as the store answers.
      expect(store.calls.save - saves).toBeLessThanOrEqual(10);
      await expect(app.encryption.decrypt(before)).resolves.toBe('before');
      await expect(app.encryption.decrypt(await app.encryption.encryptToString('meanwhile'))).resolves.toBe(
        'meanwhile',
      );
      expect(app.keys.activeKey.version).toBe(1);

      // Restored from a backup: the rotation that waited is made, without a restart.
      await expect(stores.open(spec).save(backup, 0)).resolves.toBe(true);
      await eventually(() => expect(app.keys.storeStatus.rotationPending).toBe(false));
      expect(app.keys.activeKey.version).toBe(2);
      expect((await stores.load(spec))!.keys.find((key) => key.state === 'active')!.id).toBe(app.keys.activeKey.id);
    },
  );
});

describe('the key store going away and coming back', () => {
  it('redis: the server is shut down and started again during encryptions, decryptions and a rotation', async () => {
    const spec = stores.create('redis');
    const prefix = `${spec.namespace}:`;
    let saved: Array<[string, Buffer]> = [];
    await outageScenario(
      spec,
      async () => {
        // Redis here keeps nothing across a restart; a production one would. Keep this ring's keys.
        const admin = new Redis(REDIS_URL);
        try {
          const keys = await admin.keys(`${prefix}*`);
          saved = await Promise.all(keys.map(async (key) => [key, (await admin.dumpBuffer(key))!] as [string, Buffer]));
        } finally {
          admin.disconnect();
        }
        stopRedis();
      },
      async () => {
        await startRedis();
        const admin = new Redis(REDIS_URL);
        try {
          for (const [key, dump] of saved) await admin.restore(key, 0, dump, 'REPLACE');
        } finally {
          admin.disconnect();
        }
      },
    );
  }, 60_000);

  it('postgres: the connection to the server is cut (a proxy in between) and restored', async () => {
    const proxy = new TcpProxy(5432);
    await proxy.open();
    try {
      const spec = stores.create('postgres', { postgresUrl: `postgres://postgres@127.0.0.1:${proxy.port}/test` });
      await outageScenario(
        spec,
        () => proxy.close(),
        () => proxy.open(),
      );
    } finally {
      await proxy.close();
    }
  }, 60_000);
});

const REDIS_CLI = ['-h', '127.0.0.1', '-p', '6379'];
/** Exactly as scripts/test-prerequisites.sh starts it. */
const REDIS_SERVER_ARGS = [
  ...['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no'],
  ...['--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'],
];

function stopRedis(): void {
  try {
    execFileSync('redis-cli', [...REDIS_CLI, 'shutdown', 'nosave'], { stdio: 'ignore' });
  } catch {
    // redis-cli may report the connection the shutdown closed; what counts is that Redis is gone.
  }
  expect(redisAnswers()).toBe(false);
}

/** Starts Redis as scripts/test-prerequisites.sh does, unless it answers already, and waits for PING. */
async function startRedis(): Promise<void> {
  if (!redisAnswers()) {
    for (const dir of ['/var/lib/redis', '/var/log/redis']) mkdirSync(dir, { recursive: true });
    execFileSync('redis-server', REDIS_SERVER_ARGS, { stdio: 'ignore' });
  }
  await eventually(() => expect(redisAnswers()).toBe(true), 30_000);
}

function redisAnswers(): boolean {
  try {
    return (
      execFileSync('redis-cli', [...REDIS_CLI, 'ping'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() === 'PONG'
    );
  } catch {
    return false;
  }
}
