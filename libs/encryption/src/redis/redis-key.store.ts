import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import type { RedisOptions } from 'ioredis';
import { Redis } from 'ioredis';

import { EncryptionConfigError, KeyStoreCorruptError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type {
  InstanceHeartbeat,
  KeyStore,
  KeyUsageDelta,
  StoredKeyRing,
  StoredKeyUsage,
} from '../interfaces/key-store.interface.js';
import { assertSaveable, mergeUsageDeltas, notify, parseStoredKeyRing } from '../stores/key-store.utils.js';

interface RedisKeyStoreCommonOptions {
  /**
   * Prefix of every key and of the pub/sub channel, so several rings can share one Redis. For Redis
   * Cluster, put a hash tag in it (`'{nestjs-encryption}:'`) so the store's keys share a slot.
   * @default 'nestjs-encryption:'
   */
  keyPrefix?: string;
}

export interface RedisKeyStoreUrlOptions extends RedisKeyStoreCommonOptions {
  /** The store opens (and `close()` quits) its own connection, e.g. `redis://127.0.0.1:6379/0`. */
  url: string;
  /**
   * More ioredis settings for that connection. By default a command fails at once while Redis is
   * unreachable instead of waiting in a queue: `{ enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5000 }`.
   */
  redisOptions?: RedisOptions;
  client?: never;
}

export interface RedisKeyStoreClientOptions extends RedisKeyStoreCommonOptions {
  /** An existing connection; `close()` leaves it open. Its own queueing/retry settings apply. */
  client: Redis;
  url?: never;
}

export type RedisKeyStoreOptions = RedisKeyStoreUrlOptions | RedisKeyStoreClientOptions;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  // SHA-1 names the script in Redis's script cache (EVALSHA); it protects nothing.
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: ring. ARGV: expected revision, new revision, ring JSON, channel. */
const SAVE = script(`
local current = redis.call('HGET', KEYS[1], 'revision')
local revision = 0
if current then
  revision = tonumber(current)
  if not revision then return redis.error_reply('KEY_STORE_CORRUPT stored revision is not a number') end
end
if revision ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revision', ARGV[2], 'ring', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1`);

/** KEYS: beats hash, expiry sorted set. ARGV: instance id, beat JSON, ttl ms. Times are Redis's own clock. */
const HEARTBEAT = script(`
${NOW_MS}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
for i = 1, #expired do redis.call('HDEL', KEYS[1], expired[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
return 1`);

/** KEYS: beats hash, expiry sorted set. Returns the beats whose expiry is still ahead. */
const INSTANCES = script(`
${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%.0f', now), '+inf')
local beats = {}
for i = 1, #ids do
  local beat = redis.call('HGET', KEYS[1], ids[i])
  if beat then beats[#beats + 1] = beat end
end
return beats`);

/**
 * Keeps the key ring in Redis, shared by every instance of an application.
 *
 * - The ring is a hash (revision + JSON). `save` is a Lua script: compare the revision, write, and
 *   PUBLISH the new revision, atomically.
 * - `watch` subscribes on a duplicate connection that reconnects by itself; after each reconnect it
 *   subscribes again and calls every watcher with the stored revision, so nothing missed goes unseen.
 * - Heartbeats: a hash of beats plus a sorted set of expiry times on Redis's clock.
 * - Usage: HINCRBY on per-counter hashes and `ZADD GT` for the latest use, in one MULTI (Redis >= 6.2).
 */
export class RedisKeyStore implements KeyStore {
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly keys: {
    ring: string;
    instances: string;
    expiry: string;
    encryptions: string;
    decryptions: string;
    lastUsed: string;
  };
  /** The pub/sub channel saves are announced on. */
  readonly channel: string;
  private connecting?: Promise<void>;
  private subscription?: Subscription;
  private closed = false;

  constructor(options: RedisKeyStoreOptions) {
    const prefix = options?.keyPrefix ?? 'nestjs-encryption:';
    if (typeof prefix !== 'string') {
      throw new EncryptionConfigError(MESSAGES.INVALID_KEY_STORE_OPTION('keyPrefix must be a string'));
    }
    if (options.client && options.url === undefined) {
      this.client = options.client;
      this.ownsClient = false;
    } else if (typeof options.url === 'string' && !options.client) {
      this.client = new Redis(options.url, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 5_000,
        ...options.redisOptions,
        lazyConnect: true,
      });
      // Connection errors surface on the commands that fail; unhandled, the event would only be noise.
      this.client.on('error', () => undefined);
      this.ownsClient = true;
    } else {
      throw new EncryptionConfigError(
        MESSAGES.INVALID_KEY_STORE_OPTION('RedisKeyStore needs exactly one of url or client'),
      );
    }
    this.keys = {
      ring: `${prefix}ring`,
      instances: `${prefix}instances`,
      expiry: `${prefix}instances:expiry`,
      encryptions: `${prefix}usage:encryptions`,
      decryptions: `${prefix}usage:decryptions`,
      lastUsed: `${prefix}usage:last-used`,
    };
    this.channel = `${prefix}ring:changed`;
  }

  async load(): Promise<StoredKeyRing | undefined> {
    await this.connected();
    const [revision, json] = await this.client.hmget(this.keys.ring, 'revision', 'ring');
    if (revision === null && json === null) return undefined;
    const location = `Redis key ${this.keys.ring}`;
    if (revision === null || json === null) throw new KeyStoreCorruptError(location, 'incomplete ring hash');
    let ring: unknown;
    try {
      ring = JSON.parse(json);
    } catch {
      throw new KeyStoreCorruptError(location, 'not valid JSON');
    }
    if (typeof ring !== 'object' || ring === null) return parseStoredKeyRing(ring, location);
    return parseStoredKeyRing({ ...ring, revision: Number(revision) }, location);
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    assertSaveable(ring, expectedRevision);
    await this.connected();
    const written = await this.evaluate(
      SAVE,
      [this.keys.ring],
      [expectedRevision, ring.revision, JSON.stringify(ring), this.channel],
    );
    return written === 1;
  }

  async watch(onChange: (revision: number) => void): Promise<() => Promise<void>> {
    await this.connected();
    const subscription = (this.subscription ??= new Subscription(
      this.client,
      this.channel,
      async () => Number((await this.client.hget(this.keys.ring, 'revision')) ?? 0),
    ));
    try {
      await subscription.add(onChange);
    } catch (error) {
      if (subscription.size === 0 && this.subscription === subscription) this.subscription = undefined;
      throw error;
    }
    return async () => {
      if (subscription.remove(onChange) === 0) {
        if (this.subscription === subscription) this.subscription = undefined;
        subscription.stop();
      }
    };
  }

  async heartbeat(beat: InstanceHeartbeat, ttlMs: number): Promise<void> {
    await this.connected();
    await this.evaluate(
      HEARTBEAT,
      [this.keys.instances, this.keys.expiry],
      [beat.instanceId, JSON.stringify({ instanceId: beat.instanceId, revision: beat.revision, at: beat.at }), Math.trunc(ttlMs)],
    );
  }

  async instances(): Promise<InstanceHeartbeat[]> {
    await this.connected();
    const beats = (await this.evaluate(INSTANCES, [this.keys.instances, this.keys.expiry], [])) as string[];
    return beats.map((beat) => JSON.parse(beat) as InstanceHeartbeat);
  }

  async addUsage(deltas: KeyUsageDelta[]): Promise<void> {
    const merged = mergeUsageDeltas(deltas);
    if (merged.length === 0) return;
    await this.connected();
    const multi = this.client.multi();
    for (const [keyId, usage] of merged) {
      multi.hincrby(this.keys.encryptions, keyId, Math.trunc(usage.encryptions));
      multi.hincrby(this.keys.decryptions, keyId, Math.trunc(usage.decryptions));
      multi.zadd(this.keys.lastUsed, 'GT', Math.trunc(usage.lastUsedAt), keyId);
    }
    throwFirstError(await multi.exec());
  }

  async loadUsage(): Promise<Record<string, StoredKeyUsage>> {
    await this.connected();
    const results = await this.client
      .multi()
      .hgetall(this.keys.encryptions)
      .hgetall(this.keys.decryptions)
      .zrange(this.keys.lastUsed, 0, '-1', 'WITHSCORES')
      .exec();
    throwFirstError(results);
    const [encryptions, decryptions, lastUsed] = results!.map(([, value]) => value) as [
      Record<string, string>,
      Record<string, string>,
      unknown[],
    ];
    const usage: Record<string, StoredKeyUsage> = {};
    const entry = (keyId: string) => (usage[keyId] ??= { encryptions: 0, decryptions: 0, lastUsedAt: 0 });
    for (const [keyId, count] of Object.entries(encryptions)) entry(keyId).encryptions = Number(count);
    for (const [keyId, count] of Object.entries(decryptions)) entry(keyId).decryptions = Number(count);
    // RESP2-style flat [member, score, ...] or RESP3-style [[member, score], ...]: accept either.
    const flat = lastUsed.flat() as string[];
    for (let i = 0; i < flat.length; i += 2) entry(flat[i]).lastUsedAt = Number(flat[i + 1]);
    return usage;
  }

  async ping(): Promise<void> {
    await this.connected();
    await this.client.ping();
  }

  /** Stops watching and quits the connection if the store opened it; a client that was passed in stays open. */
  async close(): Promise<void> {
    this.subscription?.stop();
    this.subscription = undefined;
    if (!this.ownsClient || this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  /** A lazily connecting client must be connected explicitly: with the offline queue off, commands would fail. */
  private connected(): Promise<void> {
    if (this.client.status !== 'wait') return this.connecting ?? Promise.resolve();
    this.connecting = this.client.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async evaluate(target: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await this.client.evalsha(target.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return this.client.eval(target.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * The pub/sub connection shared by a store's watchers: a duplicate of the store's client that retries
 * forever, subscribes again after each reconnect and then tells every watcher the stored revision.
 */
class Subscription {
  private readonly callbacks = new Set<(revision: number) => void>();
  private subscriber?: Redis;
  private starting?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly base: Redis,
    private readonly channel: string,
    private readonly readRevision: () => Promise<number>,
  ) {}

  get size(): number {
    return this.callbacks.size;
  }

  async add(onChange: (revision: number) => void): Promise<void> {
    this.starting ??= this.start().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    await this.starting;
    this.callbacks.add(onChange);
  }

  /** Returns how many watchers remain. */
  remove(onChange: (revision: number) => void): number {
    this.callbacks.delete(onChange);
    return this.callbacks.size;
  }

  stop(): void {
    this.stopped = true;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private async start(): Promise<void> {
    const subscriber = this.base.duplicate({
      lazyConnect: true,
      // Re-subscribed by hand on 'ready', so watchers can be told to catch up afterwards.
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      // Named so operators (and tests) can find it in CLIENT LIST.
      connectionName: `nestjs-encryption-watch:${this.channel}`.replace(/[^!-~]/g, '_'),
    });
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel || this.stopped) return;
      const revision = Number(message);
      if (Number.isSafeInteger(revision)) for (const callback of this.callbacks) notify(callback, revision);
    });
    try {
      await subscriber.connect();
      await subscriber.subscribe(this.channel);
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
    if (this.stopped) {
      subscriber.disconnect();
      return;
    }
    subscriber.on('ready', () => void this.resubscribe(subscriber));
    this.subscriber = subscriber;
  }

  private async resubscribe(subscriber: Redis): Promise<void> {
    try {
      await subscriber.subscribe(this.channel);
    } catch {
      return; // Dropped again: the next 'ready' tries once more.
    }
    // Saves made while we were away were published to nobody: let watchers catch up.
    for (let attempt = 0; !this.stopped && this.subscriber === subscriber; attempt++) {
      try {
        const revision = await this.readRevision();
        for (const callback of this.callbacks) notify(callback, revision);
        return;
      } catch {
        await sleep(Math.min(100 * 2 ** attempt, 5_000));
      }
    }
  }
}

function throwFirstError(results: Array<[Error | null, unknown]> | null): void {
  if (!results) throw new Error('Redis transaction was aborted');
  const failure = results.find(([error]) => error);
  if (failure) throw failure[0];
}
