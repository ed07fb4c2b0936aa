import type { AddressInfo, Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';

import { Redis } from 'ioredis';

import { eventually, randomNamespace, sampleRing } from '../../../../test/support/key-store-contract.js';
import { deleteKeysByPrefix, REDIS_URL } from '../../../../test/support/key-store-services.js';
import { EncryptionConfigError, KeyStoreCorruptError } from '../errors/encryption.errors.js';
import { RedisKeyStore } from './redis-key.store.js';

/** A TCP proxy in front of the real Redis that a test can cut, to play an outage without stopping Redis. */
class CuttableProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async start(port = 0): Promise<void> {
    const target = new URL(REDIS_URL);
    this.server = createServer((client) => {
      const upstream = connect(Number(target.port || 6379), target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

describe('RedisKeyStore', () => {
  let prefix: string;
  let redis: Redis;
  const stores: RedisKeyStore[] = [];
  const open = (options: Partial<ConstructorParameters<typeof RedisKeyStore>[0]> = {}) => {
    const store = new RedisKeyStore({ url: REDIS_URL, keyPrefix: prefix, ...options } as ConstructorParameters<
      typeof RedisKeyStore
    >[0]);
    stores.push(store);
    return store;
  };

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(() => redis.quit());

  beforeEach(() => {
    prefix = `${randomNamespace()}:`;
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await deleteKeysByPrefix(redis, prefix);
  });

  describe('connections', () => {
    it('works on an existing client and leaves it open on close()', async () => {
      const client = new Redis(REDIS_URL);
      try {
        const store = new RedisKeyStore({ client, keyPrefix: prefix });
        await store.save(sampleRing(1), 0);
        const heard: number[] = [];
        await store.watch((revision) => heard.push(revision));
        await open().save(sampleRing(2), 1);
        await eventually(() => expect(heard).toEqual([2]));
        await store.close();
        expect(client.status).toBe('ready');
        await expect(client.ping()).resolves.toBe('PONG');
        await expect(new RedisKeyStore({ client, keyPrefix: prefix }).load()).resolves.toStrictEqual(sampleRing(2));
      } finally {
        await client.quit();
      }
    });

    it('quits the connection it opened from a URL on close()', async () => {
      const store = new RedisKeyStore({ url: REDIS_URL, keyPrefix: prefix });
      await store.ping();
      await store.close();
      await expect(store.ping()).rejects.toThrow();
    });

    it('needs exactly one of url or client, and a string keyPrefix', () => {
      const message = 'Invalid key store options: RedisKeyStore needs exactly one of url or client';
      expect(() => new RedisKeyStore({} as never)).toThrow(message);
      expect(() => new RedisKeyStore({ url: REDIS_URL, client: redis } as never)).toThrow(EncryptionConfigError);
      expect(() => new RedisKeyStore({ url: REDIS_URL, keyPrefix: 7 as never })).toThrow(
        'Invalid key store options: keyPrefix must be a string',
      );
    });

    it('fails fast while Redis is unreachable instead of queueing, and recovers when it is back', async () => {
      const proxy = new CuttableProxy();
      await proxy.start();
      const store = open({ url: `redis://127.0.0.1:${proxy.port}` });
      await store.save(sampleRing(1), 0);

      await proxy.cut();
      const started = Date.now();
      await expect(store.load()).rejects.toThrow();
      await expect(store.save(sampleRing(2), 1)).rejects.toThrow();
      await expect(store.ping()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1_000);

      const again = new CuttableProxy();
      await again.start(proxy.port);
      try {
        await eventually(async () => expect(await store.load()).toStrictEqual(sampleRing(1)), 10_000);
      } finally {
        await again.cut();
      }
    });

    it('fails fast when Redis can not be reached at all', async () => {
      const store = open({ url: 'redis://127.0.0.1:1' });
      const started = Date.now();
      await expect(store.load()).rejects.toThrow();
      await expect(store.ping()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });

  describe('key prefix', () => {
    it('isolates rings, watchers, heartbeats and usage, and writes only keys under the prefix', async () => {
      const otherPrefix = `${randomNamespace()}:`;
      try {
        const mine = open();
        const other = open({ keyPrefix: otherPrefix });
        const heard: number[] = [];
        await mine.watch((revision) => heard.push(revision));

        await other.save(sampleRing(1, 'other'), 0);
        await other.heartbeat({ instanceId: 'o', revision: 1, at: 'x' }, 60_000);
        await other.addUsage([{ keyId: 'k', encryptions: 1, decryptions: 1, lastUsedAt: 1 }]);
        await expect(mine.load()).resolves.toBeUndefined();
        await expect(mine.instances()).resolves.toEqual([]);
        await expect(mine.loadUsage()).resolves.toEqual({});

        await mine.save(sampleRing(1, 'mine'), 0);
        await mine.heartbeat({ instanceId: 'm', revision: 1, at: 'y' }, 60_000);
        await mine.addUsage([{ keyId: 'k', encryptions: 5, decryptions: 0, lastUsedAt: 2 }]);
        await eventually(() => expect(heard).toEqual([1]));
        await expect(other.load()).resolves.toStrictEqual(sampleRing(1, 'other'));
        await expect(other.loadUsage()).resolves.toEqual({ k: { encryptions: 1, decryptions: 1, lastUsedAt: 1 } });

        const keys = (await redis.keys(`${prefix}*`)).sort();
        expect(keys).toEqual(
          ['instances', 'instances:expiry', 'ring', 'usage:decryptions', 'usage:encryptions', 'usage:last-used'].map(
            (name) => `${prefix}${name}`,
          ),
        );
      } finally {
        await deleteKeysByPrefix(redis, otherPrefix);
      }
    });
  });

  describe('reading back', () => {
    it('a ring hash that is not a ring is a KeyStoreCorruptError; save refuses to overwrite a garbled revision', async () => {
      const store = open();
      await redis.hset(`${prefix}ring`, 'revision', '1', 'ring', '{"keys": [');
      await expect(store.load()).rejects.toThrow(KeyStoreCorruptError);
      await expect(store.load()).rejects.toThrow(`The key store at Redis key ${prefix}ring can't be read (not valid JSON)`);

      await redis.hset(`${prefix}ring`, 'ring', JSON.stringify({ keys: 'nope' }));
      await expect(store.load()).rejects.toThrow(/keys is not an array/);

      await redis.hdel(`${prefix}ring`, 'ring');
      await expect(store.load()).rejects.toThrow(/incomplete ring hash/);

      await redis.hset(`${prefix}ring`, 'revision', 'abc', 'ring', JSON.stringify(sampleRing(1)));
      await expect(store.load()).rejects.toThrow(/invalid revision/);
      await expect(store.save(sampleRing(1), 0)).rejects.toThrow(/KEY_STORE_CORRUPT/);
      await expect(redis.hget(`${prefix}ring`, 'revision')).resolves.toBe('abc');
    });

    it('runs its scripts again after SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
      const store = open();
      await store.save(sampleRing(1), 0);
      const flusher = new Redis(REDIS_URL);
      try {
        await flusher.script('FLUSH');
      } finally {
        await flusher.quit();
      }
      await expect(store.save(sampleRing(2), 1)).resolves.toBe(true);
      await store.heartbeat({ instanceId: 'a', revision: 2, at: 'z' }, 1_000);
      await expect(store.instances()).resolves.toEqual([{ instanceId: 'a', revision: 2, at: 'z' }]);
    });
  });

  describe('watch', () => {
    const killSubscriber = async (store: RedisKeyStore) => {
      const list = (await redis.client('LIST')) as string;
      const ids = list
        .split('\n')
        .filter((line) => line.includes(` name=nestjs-encryption-watch:${store.channel} `))
        .map((line) => /\bid=(\d+)/.exec(line)![1]);
      for (const id of ids) await redis.client('KILL', 'ID', id);
      return ids.length;
    };

    it('subscribes again after its connection is killed, then tells watchers the stored revision so they catch up', async () => {
      const watcher = open();
      const writer = open();
      const heard: number[] = [];
      await watcher.watch((revision) => heard.push(revision));
      await writer.save(sampleRing(1), 0);
      await eventually(() => expect(heard).toEqual([1]));

      await expect(killSubscriber(watcher)).resolves.toBe(1);
      // No save happened: the extra call is the catch-up after re-subscribing.
      await eventually(() => expect(heard).toEqual([1, 1]));
      await writer.save(sampleRing(2), 1);
      await eventually(() => expect(heard).toEqual([1, 1, 2]));

      // A save published while the subscriber is down is not lost either.
      await expect(killSubscriber(watcher)).resolves.toBe(1);
      await writer.save(sampleRing(3), 2);
      await eventually(() => expect(heard.at(-1)).toBe(3));
      await writer.save(sampleRing(4), 3);
      await eventually(() => expect(heard.at(-1)).toBe(4));
    });

    it('one subscriber connection serves all watchers of a store; the last stop closes it', async () => {
      const store = open();
      const count = async () =>
        ((await redis.client('LIST')) as string)
          .split('\n')
          .filter((line) => line.includes(` name=nestjs-encryption-watch:${store.channel} `)).length;
      const stopA = await store.watch(() => undefined);
      const stopB = await store.watch(() => undefined);
      await expect(count()).resolves.toBe(1);
      await stopA();
      await expect(count()).resolves.toBe(1);
      await stopB();
      await eventually(async () => expect(await count()).toBe(0));
    });
  });

  describe('heartbeats', () => {
    it('expire on the Redis clock and are pruned by later beats', async () => {
      const store = open();
      await store.heartbeat({ instanceId: 'gone', revision: 1, at: 'a' }, 100);
      await new Promise((resolve) => setTimeout(resolve, 250));
      await store.heartbeat({ instanceId: 'here', revision: 2, at: 'b' }, 60_000);
      await expect(store.instances()).resolves.toEqual([{ instanceId: 'here', revision: 2, at: 'b' }]);
      await expect(redis.hkeys(`${prefix}instances`)).resolves.toEqual(['here']);
      await expect(redis.zrange(`${prefix}instances:expiry`, 0, '-1')).resolves.toEqual(['here']);
    });
  });
});
