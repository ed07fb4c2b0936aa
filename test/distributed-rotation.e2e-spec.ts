import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import type { StoredKeyRing } from 'nestjs-encryption';

import type { ObservedRing } from './fixtures/distributed/counting-key-store.js';
import type { DistributedBuild } from './fixtures/distributed/distributed-build.js';
import { buildDistributedFixtures } from './fixtures/distributed/distributed-build.js';
import { withKeyId } from './fixtures/distributed/envelope-key-id.js';
import type { Instance } from './fixtures/distributed/fleet.js';
import { Fleet } from './fixtures/distributed/fleet.js';
import type { BootArgs, DecryptReport, Sealed, Snapshot } from './fixtures/distributed/instance.child.js';
import type { StoreKind, StoreSpec } from './fixtures/distributed/open-key-store.js';
import { TestStores } from './fixtures/distributed/test-stores.js';
import { eventually } from './support/key-store-contract.js';

/**
 * Distributed rotation across real processes sharing one PostgreSQL or Redis store: simultaneous
 * rotations, staged-key propagation, unknown-key reloads, and processes SIGKILLed mid-rotation or
 * mid-rewrap. Each instance is `EncryptionModule` in its own Node process (fixtures/distributed).
 */

const SHARED_STORES: StoreKind[] = ['postgres', 'redis'];
const MASTER_KEYS = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')];
const FAST_PROPAGATION = { keyPropagation: { delayMs: 2_000, heartbeatIntervalMs: 100 } };
const PROCESSES = 8;

let build: DistributedBuild;
let fleet: Fleet;
/** Long-lived processes, each booting a new app per test (starting Nest in a process takes a while). */
let pool: Instance[];
const stores = new TestStores();

beforeAll(async () => {
  build = buildDistributedFixtures();
  fleet = new Fleet(build);
  pool = await fleet.startMany(PROCESSES);
}, 120_000);

afterEach(async () => {
  await Promise.all((pool ?? []).map((instance) => instance.call('close')));
});

afterAll(async () => {
  await fleet?.closeAll();
  build?.remove();
  await stores.cleanup();
});

const boot = (instance: Instance, store: StoreSpec, instanceId: string, extra: Partial<BootArgs> = {}) =>
  instance.call<Snapshot>('boot', {
    store,
    masterKeys: [MASTER_KEYS[0]],
    instanceId,
    options: FAST_PROPAGATION,
    ...extra,
  });

const versions = (ring: StoredKeyRing | undefined) => ring!.keys.map((key) => key.version).sort((a, b) => a - b);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Every instance calls `rotate()` once, released together after all of them are waiting. */
async function rotateTogether(instances: Instance[]): Promise<Array<{ id: string; version: number }>> {
  let armed = 0;
  let allArmed!: () => void;
  const ready = new Promise<void>((resolve) => (allArmed = resolve));
  const stops = instances.map((instance) =>
    instance.onEvent((event) => {
      if (event.event === 'armed' && ++armed === instances.length) allArmed();
    }),
  );
  const results = instances.map((instance) => instance.call<{ id: string; version: number }>('armRotate'));
  await ready;
  for (const instance of instances) instance.signal('go');
  try {
    return await Promise.all(results);
  } finally {
    for (const stop of stops) stop();
  }
}

describe('8 processes rotating at the same moment, encrypting all the while', () => {
  const ROUNDS = 6;

  it.each(SHARED_STORES)(
    '%s: exactly one new key per round, all agree on it, every ciphertext decrypts in every other process',
    async (kind) => {
      const store = stores.create(kind);
      // They boot together too: one of them creates the first key, the others adopt it.
      const booted = await Promise.all(pool.map((racer, i) => boot(racer, store, `${kind}-racer-${i}`)));
      expect(new Set(booted.map((snapshot) => snapshot.activeKeyId)).size).toBe(1);
      expect(versions(await stores.load(store))).toEqual([1]);

      await Promise.all(pool.map((racer) => racer.call('startEncrypting', { intervalMs: 3 })));
      let activeId = booted[0].activeKeyId;
      for (let round = 1; round <= ROUNDS; round++) {
        const rotated = await rotateTogether(pool);
        expect(new Set(rotated.map((key) => key.id)).size).toBe(1);
        expect(rotated[0].version).toBe(round + 1);
        expect(rotated[0].id).not.toBe(activeId);
        activeId = rotated[0].id;
        const states = await Promise.all(pool.map((racer) => racer.call<Snapshot>('state')));
        expect(states.map((state) => state.activeKeyId)).toEqual(Array(PROCESSES).fill(activeId));
        expect(versions(await stores.load(store))).toEqual(oneTo(round + 1));
      }
      const loops = await Promise.all(
        pool.map((racer) => racer.call<{ sealed: Sealed[]; failures: string[] }>('stopEncrypting')),
      );
      expect(loops.flatMap((loop) => loop.failures)).toEqual([]);
      const sealed = loops.map((loop) => loop.sealed);

      const ring = (await stores.load(store))!;
      expect(ring.keys.filter((key) => key.state === 'active').map((key) => key.id)).toEqual([activeId]);
      expect(ring.keys.filter((key) => key.state === 'staged')).toEqual([]);
      // An instance never goes back to an older key once it has encrypted with a newer one.
      const versionOf = new Map(ring.keys.map((key) => [key.id, key.version]));
      for (const own of sealed) {
        const used = own.map((item) => versionOf.get(item.keyId)!);
        expect(used).toEqual([...used].sort((a, b) => a - b));
        expect(own.length).toBeGreaterThan(20);
      }
      // Each process decrypts what all the others made during the race.
      const reports = await Promise.all(
        pool.map((racer, i) =>
          racer.call<DecryptReport>('decrypt', { items: sealed.filter((_, j) => j !== i).flat() }),
        ),
      );
      const total = sealed.flat().length;
      reports.forEach((report, i) => {
        expect(report.failures).toEqual([]);
        expect(report.decrypted).toBe(total - sealed[i].length);
      });
    },
    60_000,
  );
});

describe('propagation: a new key is staged before it is active', () => {
  it.each(SHARED_STORES)(
    '%s: an instance that only polls loads each staged key before it turns active, and decrypts at once what is made with it',
    async (kind) => {
      const store = stores.create(kind);
      const [rotator, poller, watcher] = pool;
      // The promotion has to come from the poller's heartbeat: the propagation delay is far away.
      const slow = { keyPropagation: { delayMs: 30_000, heartbeatIntervalMs: 100 } };
      await boot(rotator, store, 'rotator', { options: slow });
      // Its heartbeat lives 3 intervals: long enough that a busy machine doesn't make it look gone.
      await boot(poller, store, 'poller', {
        watch: false,
        options: { keyPropagation: { delayMs: 30_000, heartbeatIntervalMs: 1_000 } },
      });
      await boot(watcher, store, 'watcher', { options: slow });

      const rotated: string[] = [];
      for (let round = 0; round < 4; round++) {
        const started = Date.now();
        const { key, sealed } = await rotator.call<{ key: { id: string; version: number }; sealed: Sealed[] }>(
          'rotateThenEncrypt',
          {
            count: 20,
          },
        );
        expect(Date.now() - started).toBeLessThan(30_000);
        expect(sealed.every((item) => item.keyId === key.id)).toBe(true);
        rotated.push(key.id);
        for (const receiver of [poller, watcher]) {
          const report = await receiver.call<DecryptReport>('decrypt', { items: sealed });
          // No ciphertext reached it before its key: nothing was reloaded on demand.
          expect(report).toEqual({ decrypted: 20, failures: [], unknownKeyReloads: 0, loads: 0 });
        }
      }

      // Its next tick picks up the last promotion too.
      await eventually(async () => expect((await poller.call<Snapshot>('state')).activeKeyId).toBe(rotated.at(-1)));
      // It held each key staged before it held it active (it may have promoted one itself, with a save).
      const seen = await poller.call<ObservedRing[]>('ringsSeen');
      for (const id of rotated) {
        const stagedAt = seen.findIndex((ring) => ring.staged.includes(id));
        const activeAt = seen.findIndex((ring) => ring.active === id);
        expect(seen[stagedAt]).toMatchObject({ via: 'load' });
        expect(activeAt).toBeGreaterThan(stagedAt);
      }
      expect(versions(await stores.load(store))).toEqual(oneTo(5));
    },
    60_000,
  );

  it.each(SHARED_STORES)(
    '%s: a ciphertext of an unknown key reloads the ring once; a burst of random key ids loads at most once per unknownKeyReloadIntervalMs',
    async (kind) => {
      const store = stores.create(kind);
      const [rotator, stale] = pool;
      const INTERVAL = 400;
      await boot(rotator, store, 'rotator', {
        options: { keyPropagation: { delayMs: 1_500, heartbeatIntervalMs: 100 } },
      });
      // Neither watching nor ticking for a minute: its heartbeat says it holds the old revision throughout.
      await boot(stale, store, 'stale', {
        watch: false,
        options: {
          keyPropagation: { delayMs: 1_500, heartbeatIntervalMs: 60_000 },
          unknownKeyReloadIntervalMs: INTERVAL,
        },
      });

      // So the staged key waits for the propagation delay, then turns active without the stale instance.
      const started = Date.now();
      const { key, sealed } = await rotator.call<{ key: { id: string }; sealed: Sealed[] }>('rotateThenEncrypt', {
        count: 10,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
      const first = await stale.call<DecryptReport>('decrypt', { items: sealed });
      expect(first).toEqual({ decrypted: 10, failures: [], unknownKeyReloads: 1, loads: 1 });
      expect((await stale.call<Snapshot>('state')).activeKeyId).toBe(key.id);

      // A burst of ciphertexts naming keys nobody has, in waves over more than three intervals.
      const forged = (n: number) =>
        Array.from({ length: n }, () => withKeyId(sealed[0].text, `k9-${randomBytes(8).toString('hex')}`));
      const burstStart = Date.now();
      let loads = 0;
      let reloads = 0;
      const codes: string[] = [];
      while (Date.now() - burstStart < 3.5 * INTERVAL) {
        const wave = await stale.call<{ codes: string[]; unknownKeyReloads: number; loads: number }>(
          'decryptConcurrently',
          {
            items: forged(100),
          },
        );
        codes.push(...wave.codes);
        loads += wave.loads;
        reloads += wave.unknownKeyReloads;
        await sleep(50);
      }
      const elapsed = Date.now() - burstStart;
      expect(new Set(codes)).toEqual(new Set(['KEY_NOT_FOUND']));
      expect(reloads).toBe(codes.length);
      expect(loads).toBeGreaterThanOrEqual(2);
      expect(loads).toBeLessThanOrEqual(Math.floor(elapsed / INTERVAL) + 1);
    },
    30_000,
  );
});

/**
 * Processes to kill: idle ones of the pool first, then new ones, started two ahead of need so a kill
 * rarely waits for Nest to load.
 */
class Victims {
  private readonly ready: Array<Promise<Instance>>;

  constructor(
    idle: Instance[],
    /** How many will be taken in all. */
    private needed: number,
  ) {
    this.ready = idle.map((instance) => Promise.resolve(instance));
    this.topUp();
  }

  take(): Promise<Instance> {
    this.needed--;
    const next = this.ready.shift() ?? fleet.start();
    this.topUp();
    return next;
  }

  private topUp(): void {
    while (this.ready.length < Math.min(2, this.needed)) this.ready.push(fleet.start());
  }
}

describe('processes SIGKILLed while they rotate or rewrap the master key', () => {
  /** One process per kill: each rotates (or rewraps) in a loop and is killed at a random moment of it. */
  const KILLS = ['rotate', 'rewrap', 'rotate', 'rewrap'] as const;
  let victims: Victims;

  beforeAll(() => {
    // The first three stay in the pool for the survivors' parts.
    victims = new Victims(pool.splice(3), SHARED_STORES.length * (KILLS.length + 2));
  });

  it.each(SHARED_STORES)(
    '%s: the store still loads, versions stay consecutive, and a fresh process decrypts everything made before the kills',
    async (kind) => {
      const store = stores.create(kind);
      const sealed: Sealed[] = [];
      const steps: number[] = [];

      for (const [kill, mode] of KILLS.entries()) {
        const victim = await victims.take();
        let done = 0;
        let firstStep!: () => void;
        const looping = new Promise<void>((resolve) => (firstStep = resolve));
        victim.onEvent((event) => {
          if (event.event === 'sealed') sealed.push(event.sealed);
          if (event.event === 'step' && ++done === 1) firstStep();
        });
        // Whichever master key the ring is wrapped with now.
        await victim.call('boot', {
          store,
          masterKeys: MASTER_KEYS,
          instanceId: `${mode}-victim-${kill}`,
          options: FAST_PROPAGATION,
        });
        void victim.call('crashLoop', { mode, masterKeys: MASTER_KEYS }).catch(() => undefined);
        await looping;
        await sleep(Math.random() * 150);
        await victim.kill();
        steps.push(done);

        const ring = await stores.load(store);
        expect(versions(ring)).toEqual(oneTo(ring!.keys.length));
        expect(new Set(ring!.keys.map((key) => key.id)).size).toBe(ring!.keys.length);
      }
      expect(steps.every((count) => count >= 1)).toBe(true);

      // A fresh process opens the ring with one of the two master keys, not with the other.
      const [fresh, other] = pool;
      const opened = await boot(fresh, store, 'fresh', { masterKeys: MASTER_KEYS });
      await expect(
        boot(other, store, 'other', { masterKeys: [MASTER_KEYS[1 - opened.masterKey]] }),
      ).rejects.toMatchObject({
        name: 'MasterKeyMismatchError',
      });
      const report = await fresh.call<DecryptReport>('decrypt', { items: sealed });
      expect(report.failures).toEqual([]);
      expect(report.decrypted).toBe(sealed.length);
      expect(sealed.length).toBeGreaterThanOrEqual(KILLS.length);
      // A staged key a kill left behind is promoted by the survivor.
      await eventually(async () =>
        expect((await stores.load(store))!.keys.filter((key) => key.state === 'staged')).toEqual([]),
      );
    },
    120_000,
  );

  it.each(SHARED_STORES)(
    "%s: a key staged just before a crash is promoted by the next instance's tick, or taken up by its rotate()",
    async (kind) => {
      const store = stores.create(kind);
      const [survivor, victim] = pool;
      await boot(survivor, store, 'first');
      await survivor.call('close');

      const crashAfterStaging = async (instanceId: string) => {
        const instance = await victims.take();
        await boot(instance, store, instanceId, { dieOn: 'key-staged' });
        await expect(instance.call('rotate')).rejects.toThrow(/exited \(SIGKILL\)/);
        const ring = (await stores.load(store))!;
        const staged = ring.keys.filter((key) => key.state === 'staged');
        expect(staged).toHaveLength(1);
        return staged[0];
      };

      // Tick: the next instance boots and does nothing; its background round promotes the key.
      const leftOver = await crashAfterStaging('crashes-1');
      expect(leftOver.version).toBe(2);
      await boot(survivor, store, 'ticks');
      await eventually(async () => expect((await survivor.call<Snapshot>('state')).activeKeyId).toBe(leftOver.id));
      await survivor.call('close');
      expect(versions(await stores.load(store))).toEqual([1, 2]);

      // rotate(): it joins the staged rotation rather than adding a key of its own.
      const second = await crashAfterStaging('crashes-2');
      expect(second.version).toBe(3);
      await boot(victim, store, 'rotates', {
        options: { keyPropagation: { delayMs: 2_000, heartbeatIntervalMs: 60_000 } },
      });
      await expect(victim.call('rotate')).resolves.toEqual({ id: second.id, version: 3 });
      const ring = (await stores.load(store))!;
      expect(versions(ring)).toEqual([1, 2, 3]);
      expect(ring.keys.find((key) => key.state === 'active')!.id).toBe(second.id);
    },
    60_000,
  );
});

describe('usage counts from several processes', () => {
  it.each(SHARED_STORES)(
    '%s: counted in memory, written in one batch per round: a third process sees the sum of two others',
    async (kind) => {
      const store = stores.create(kind);
      const [first, second, third] = pool;
      // Background rounds (heartbeat, usage flush) only when the test asks for one with `tick`.
      const manual = { options: { keyPropagation: { delayMs: 2_000, heartbeatIntervalMs: 60_000 } } };
      await boot(first, store, 'first', manual);
      await boot(second, store, 'second', manual);
      const idle = await Promise.all([first, second].map((instance) => instance.call<Snapshot>('state')));

      const fromFirst = await first.call<Sealed[]>('encrypt', { count: 300, prefix: 'first' });
      const fromSecond = await second.call<Sealed[]>('encrypt', { count: 200, prefix: 'second' });
      expect((await first.call<DecryptReport>('decrypt', { items: fromSecond })).decrypted).toBe(200);
      expect((await second.call<DecryptReport>('decrypt', { items: [...fromFirst, ...fromSecond] })).decrypted).toBe(
        500,
      );

      // 1,200 operations, and not one write to the store.
      const busy = await Promise.all([first, second].map((instance) => instance.call<Snapshot>('state')));
      busy.forEach((state, i) => expect(state.calls).toEqual(idle[i].calls));

      await Promise.all([first, second].map((instance) => instance.call('tick')));
      const flushed = await Promise.all([first, second].map((instance) => instance.call<Snapshot>('state')));
      flushed.forEach((state, i) => expect(state.calls.addUsage).toBe(idle[i].calls.addUsage + 1));

      const observer = await boot(third, store, 'third', manual);
      const key = observer.keys.find((candidate) => candidate.state === 'active')!;
      expect(key).toMatchObject({ encryptions: 500, decryptions: 700 });

      // A round with nothing new to count writes no usage.
      await first.call('tick');
      expect((await first.call<Snapshot>('state')).calls.addUsage).toBe(flushed[0].calls.addUsage);
    },
    30_000,
  );
});
