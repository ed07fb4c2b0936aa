import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import type { KeyStore, StoredKeyRing } from 'nestjs-encryption';
import { EncryptionInputError } from 'nestjs-encryption';

/** Opens a connection to the store for `namespace`; two calls with one namespace share the stored data. */
export type MakeKeyStore = (namespace: string) => KeyStore | Promise<KeyStore>;

/** A fresh namespace per test (schema, key prefix, directory): valid as a SQL identifier and a Redis key part. */
export const randomNamespace = (): string => `ks_${randomBytes(6).toString('hex')}`;

/** A realistic ring: every optional field set, one key per lifecycle state. `tag` makes rings tell apart. */
export function sampleRing(revision: number, tag = 'a'): StoredKeyRing {
  const wrapped = (id: string) => `v1.${Buffer.from(`${tag}:${id}`).toString('base64url')}`;
  return {
    revision,
    masterKeyCheck: `check-${tag}`,
    masterKeySalt: Buffer.from(`salt-${tag}`).toString('base64'),
    keys: [
      { id: `k5-${tag}`, version: 5, createdAt: '2026-05-01T00:00:00.000Z', state: 'staged', wrappedKey: wrapped('k5') },
      { id: `k4-${tag}`, version: 4, createdAt: '2026-04-01T00:00:00.000Z', state: 'active', wrappedKey: wrapped('k4') },
      {
        id: `k3-${tag}`,
        version: 3,
        createdAt: '2026-03-01T00:00:00.000Z',
        state: 'decrypt-only',
        wrappedKey: wrapped('k3'),
        stateChangedAt: '2026-04-01T00:00:00.000Z',
      },
      {
        id: `k2-${tag}`,
        version: 2,
        createdAt: '2026-02-01T00:00:00.000Z',
        state: 'retired',
        wrappedKey: wrapped('k2'),
        stateChangedAt: '2026-04-02T00:00:00.000Z',
      },
      {
        id: `k1-${tag}-é✓`,
        version: 1,
        createdAt: '2026-01-01T00:00:00.000Z',
        state: 'destroyed',
        stateChangedAt: '2026-04-03T00:00:00.000Z',
      },
    ],
    // Key pairs: opaque to stores, but they must round-trip like the rest (JSONB reorders members, nothing more).
    keyPairs: [
      {
        kid: `kp2-${tag}`,
        alg: 'ECDH-ES+A256KW',
        crv: 'X25519',
        state: 'active',
        createdAt: '2026-04-01T00:00:00.000Z',
        stateChangedAt: '2026-04-01T00:00:00.000Z',
        publicJwk: { kty: 'OKP', crv: 'X25519', x: `x-${tag}`, kid: `kp2-${tag}`, alg: 'ECDH-ES+A256KW', use: 'enc' },
        wrappedPrivateKey: wrapped('kp2'),
      },
      {
        kid: `kp1-${tag}`,
        alg: 'RSA-OAEP-256',
        rsaKeySize: 2048,
        state: 'decrypt-only',
        createdAt: '2026-03-01T00:00:00.000Z',
        publicJwk: { kty: 'RSA', n: `n-${tag}`, e: 'AQAB', kid: `kp1-${tag}`, alg: 'RSA-OAEP-256', use: 'enc' },
        wrappedPrivateKey: wrapped('kp1'),
      },
    ],
  };
}

/** Polls until `check` passes or `timeoutMs` elapses; then fails with the last assertion error. */
export async function eventually(check: () => void | Promise<void>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(25);
    }
  }
}

/**
 * The behaviour every `KeyStore` must have, against the real backing service. `makeStore(namespace)`
 * opens a new connection (a second `PostgresKeyStore`, `RedisKeyStore`, `FileKeyStore` on the same path,
 * or the shared `InMemoryKeyStore`); `cleanup(namespace)` removes what the test stored.
 */
export function describeKeyStoreContract(
  name: string,
  makeStore: MakeKeyStore,
  cleanup: (namespace: string) => void | Promise<void>,
): void {
  describe(`${name}: KeyStore contract`, () => {
    let namespace: string;
    const opened: KeyStore[] = [];
    const connect = async (): Promise<KeyStore> => {
      const store = await makeStore(namespace);
      opened.push(store);
      return store;
    };

    beforeEach(() => {
      namespace = randomNamespace();
    });

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close?.();
      await cleanup(namespace);
    });

    it('loads undefined, no usage and no instances when nothing is stored', async () => {
      const store = await connect();
      await expect(store.load()).resolves.toBeUndefined();
      await expect(store.loadUsage!()).resolves.toEqual({});
      await expect(store.instances!()).resolves.toEqual([]);
    });

    it('saves at revision 0 and loads a deep-equal ring, from this and from another connection', async () => {
      const [writer, reader] = [await connect(), await connect()];
      const ring = sampleRing(1);
      await expect(writer.save(ring, 0)).resolves.toBe(true);
      await expect(writer.load()).resolves.toStrictEqual(ring);
      await expect(reader.load()).resolves.toStrictEqual(ring);
    });

    it('keeps its own copy: mutating a saved or loaded ring changes nothing stored', async () => {
      const store = await connect();
      const ring = sampleRing(1);
      await store.save(ring, 0);
      ring.keys[0].state = 'destroyed';
      ring.keys.pop();
      const loaded = (await store.load())!;
      loaded.keys[1].wrappedKey = 'tampered';
      loaded.revision = 99;
      await expect(store.load()).resolves.toStrictEqual(sampleRing(1));
    });

    it('compare-and-set: a stale, missing or future expected revision returns false and writes nothing', async () => {
      const [first, second] = [await connect(), await connect()];
      await expect(first.save(sampleRing(1, 'one'), 0)).resolves.toBe(true);
      await expect(second.save(sampleRing(2, 'two'), 1)).resolves.toBe(true);

      await expect(first.save(sampleRing(2, 'stale'), 1)).resolves.toBe(false);
      await expect(first.save(sampleRing(1, 'again'), 0)).resolves.toBe(false);
      await expect(first.save(sampleRing(8, 'future'), 7)).resolves.toBe(false);
      await expect(first.load()).resolves.toStrictEqual(sampleRing(2, 'two'));
      await expect(second.load()).resolves.toStrictEqual(sampleRing(2, 'two'));
    });

    it('refuses a ring whose revision does not grow past the expected one', async () => {
      const store = await connect();
      await store.save(sampleRing(1), 0);
      await expect(store.save(sampleRing(1, 'same'), 1)).rejects.toThrow(EncryptionInputError);
      await expect(store.save(sampleRing(0, 'zero'), 0)).rejects.toThrow(
        "A saved key ring's revision must be an integer greater than the expected revision 0 (got 0)",
      );
      await expect(store.save(sampleRing(2.5, 'fraction'), 1)).rejects.toThrow(EncryptionInputError);
      await expect(store.load()).resolves.toStrictEqual(sampleRing(1));
    });

    it('20 concurrent saves from one expected revision (two connections): exactly one wins, its ring is stored', async () => {
      const connections = [await connect(), await connect()];
      for (const expected of [0, 1]) {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => connections[i % 2].save(sampleRing(expected + 1, `w${i}`), expected)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(connections[0].load()).resolves.toStrictEqual(sampleRing(expected + 1, `w${winner}`));
        await expect(connections[1].load()).resolves.toStrictEqual(sampleRing(expected + 1, `w${winner}`));
      }
    });

    it('watch: hears the revisions another connection saves, and nothing after it stops', async () => {
      const [watcher, writer] = [await connect(), await connect()];
      const heard: number[] = [];
      const stop = await watcher.watch!((revision) => heard.push(revision));

      await writer.save(sampleRing(1), 0);
      await eventually(() => expect(heard).toContain(1));
      await writer.save(sampleRing(2), 1);
      await writer.save(sampleRing(3), 2);
      await eventually(() => expect(heard.at(-1)).toBe(3));
      expect([...heard].sort((a, b) => a - b)).toEqual(heard);
      // A failed compare-and-set announces nothing.
      const before = heard.length;
      await writer.save(sampleRing(3, 'lost'), 1);
      await sleep(300);
      expect(heard.length).toBe(before);

      await stop();
      await writer.save(sampleRing(4), 3);
      await sleep(600);
      expect(heard.length).toBe(before);
      expect(heard).not.toContain(4);
    });

    it('watch: a throwing callback does not stop other watchers or later notifications', async () => {
      const [watcher, writer] = [await connect(), await connect()];
      const heard: number[] = [];
      const stopThrowing = await watcher.watch!(() => {
        throw new Error('watcher bug');
      });
      const stop = await watcher.watch!((revision) => heard.push(revision));
      await writer.save(sampleRing(1), 0);
      await eventually(() => expect(heard).toContain(1));
      await writer.save(sampleRing(2), 1);
      await eventually(() => expect(heard).toContain(2));
      await stopThrowing();
      await stop();
    });

    it('heartbeats: instances within their TTL are listed (one entry each, latest beat), expired ones are not', async () => {
      const [first, second] = [await connect(), await connect()];
      // Long enough that a slow machine lists it before it expires; the sleep below outlasts it.
      await first.heartbeat!({ instanceId: 'short', revision: 1, at: '2026-05-01T00:00:00.000Z' }, 1_500);
      await second.heartbeat!({ instanceId: 'long', revision: 2, at: '2026-05-01T00:00:01.000Z' }, 60_000);
      await first.heartbeat!({ instanceId: 'short', revision: 3, at: '2026-05-01T00:00:02.000Z' }, 1_500);

      const byId = (beats: Awaited<ReturnType<NonNullable<KeyStore['instances']>>>) =>
        [...beats].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
      expect(byId(await second.instances!())).toEqual([
        { instanceId: 'long', revision: 2, at: '2026-05-01T00:00:01.000Z' },
        { instanceId: 'short', revision: 3, at: '2026-05-01T00:00:02.000Z' },
      ]);
      await sleep(1_700);
      await expect(first.instances!()).resolves.toEqual([
        { instanceId: 'long', revision: 2, at: '2026-05-01T00:00:01.000Z' },
      ]);
      // A beat after expiry brings the instance back.
      await first.heartbeat!({ instanceId: 'short', revision: 4, at: '2026-05-01T00:00:03.000Z' }, 60_000);
      expect(byId(await second.instances!()).map((beat) => [beat.instanceId, beat.revision])).toEqual([
        ['long', 2],
        ['short', 4],
      ]);
    });

    it('addUsage accumulates across calls, within a batch and across concurrent calls on two connections', async () => {
      const [first, second] = [await connect(), await connect()];
      await first.addUsage!([
        { keyId: 'a', encryptions: 1, decryptions: 2, lastUsedAt: 1_000 },
        { keyId: 'b', encryptions: 0, decryptions: 1, lastUsedAt: 500 },
        { keyId: 'a', encryptions: 1, decryptions: 0, lastUsedAt: 900 },
      ]);
      await first.addUsage!([]);
      await expect(second.loadUsage!()).resolves.toEqual({
        a: { encryptions: 2, decryptions: 2, lastUsedAt: 1_000 },
        b: { encryptions: 0, decryptions: 1, lastUsedAt: 500 },
      });

      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          [first, second][i % 2].addUsage!([
            { keyId: 'a', encryptions: 1, decryptions: 3, lastUsedAt: 1_000 + i },
            { keyId: 'c', encryptions: 2, decryptions: 0, lastUsedAt: 1_700_000_000_000 + i },
          ]),
        ),
      );
      // lastUsedAt only moves forward.
      await second.addUsage!([{ keyId: 'a', encryptions: 0, decryptions: 0, lastUsedAt: 1 }]);
      await expect(first.loadUsage!()).resolves.toEqual({
        a: { encryptions: 22, decryptions: 62, lastUsedAt: 1_019 },
        b: { encryptions: 0, decryptions: 1, lastUsedAt: 500 },
        c: { encryptions: 40, decryptions: 0, lastUsedAt: 1_700_000_000_019 },
      });
    });

    it('ping resolves while the store is reachable', async () => {
      const store = await connect();
      await expect(store.ping!()).resolves.toBeUndefined();
    });

    it('close resolves, and again when called twice', async () => {
      const store = await makeStore(namespace);
      await store.save(sampleRing(1), 0);
      await store.watch!(() => undefined);
      await expect(store.close!()).resolves.toBeUndefined();
      await expect(store.close!()).resolves.toBeUndefined();
      const other = await connect();
      await expect(other.load()).resolves.toStrictEqual(sampleRing(1));
    });
  });
}
