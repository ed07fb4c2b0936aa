import { createHash } from 'node:crypto';

import type { Client, ClientConfig, Pool, PoolClient, PoolConfig } from 'pg';
import pg from 'pg';

import { EncryptionConfigError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type {
  InstanceHeartbeat,
  KeyStore,
  KeyUsageDelta,
  StoredKeyRing,
  StoredKeyUsage,
} from '../interfaces/key-store.interface.js';
import { assertSaveable, mergeUsageDeltas, notify, parseStoredKeyRing } from '../stores/key-store.utils.js';

interface PostgresKeyStoreCommonOptions {
  /** Schema of the store's tables; created when missing. @default 'public' */
  schema?: string;
  /** Prefix of the store's table names (`<prefix>key_ring`, `<prefix>instances`, `<prefix>key_usage`). @default 'nestjs_encryption_' */
  tablePrefix?: string;
  /** Longest wait between attempts to re-open the `watch` connection after it drops. @default 5000 */
  maxReconnectDelayMs?: number;
}

export interface PostgresKeyStoreConnectionStringOptions extends PostgresKeyStoreCommonOptions {
  /** The store opens (and `close()` ends) its own pool. */
  connectionString: string;
  /** More settings for that pool. @default `{ max: 4, connectionTimeoutMillis: 5000 }` */
  poolConfig?: Omit<PoolConfig, 'connectionString'>;
  pool?: never;
}

export interface PostgresKeyStorePoolOptions extends PostgresKeyStoreCommonOptions {
  /** An existing pool; `close()` leaves it open. `watch` opens one extra connection with the pool's settings. */
  pool: Pool;
  connectionString?: never;
}

export type PostgresKeyStoreOptions = PostgresKeyStoreConnectionStringOptions | PostgresKeyStorePoolOptions;

/** Letters, digits and underscores, not starting with a digit: nothing that needs (or could break) quoting. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL truncates identifiers beyond NAMEDATALEN - 1 bytes; refuse instead. */
const MAX_IDENTIFIER_LENGTH = 63;
const TABLES = { ring: 'key_ring', instances: 'instances', usage: 'key_usage' } as const;
const RING_ROW_ID = 1;
/** One advisory lock for every store's migration: boots are rare and the DDL is fast. */
const MIGRATION_LOCK = BigInt.asIntN(
  64,
  BigInt(`0x${createHash('sha256').update('nestjs-encryption/postgres:migrate').digest('hex').slice(0, 16)}`),
).toString();

/**
 * Keeps the key ring in PostgreSQL, shared by every instance of an application.
 *
 * - The ring is one row (revision + JSONB); `save` is a compare-and-set on the revision in a single
 *   statement that also `pg_notify`s the new revision, so watchers hear of exactly the committed writes.
 * - `watch` listens on a dedicated connection that is re-opened after it drops; each watcher is then
 *   called with the stored revision, so it reloads whatever it missed while disconnected.
 * - Heartbeat expiry and instance liveness use the database clock, so instances with skewed clocks agree.
 * - Tables are created on first use by an idempotent migration, serialized with an advisory lock so
 *   many instances can boot at once.
 */
export class PostgresKeyStore implements KeyStore {
  /** The LISTEN/NOTIFY channel of this store's ring: derived from schema and table, so stores don't cross-talk. */
  readonly channel: string;
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly listenConfig: ClientConfig;
  private readonly maxReconnectDelayMs: number;
  private readonly schema: string;
  private readonly tables: { ring: string; instances: string; usage: string };
  private readonly location: string;
  private migration?: Promise<void>;
  private listener?: Listener;
  private closed = false;

  constructor(options: PostgresKeyStoreOptions) {
    const schema = options?.schema ?? 'public';
    const prefix = options?.tablePrefix ?? 'nestjs_encryption_';
    assertIdentifier(schema, 'schema');
    if (prefix !== '') assertIdentifier(`${prefix}${TABLES.instances}`, 'tablePrefix');
    this.schema = schema;
    const table = (name: string) => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(`${prefix}${name}`)}`;
    this.tables = { ring: table(TABLES.ring), instances: table(TABLES.instances), usage: table(TABLES.usage) };
    this.location = `PostgreSQL table ${schema}.${prefix}${TABLES.ring}`;
    this.channel = `nestjs_encryption_${createHash('sha256').update(`${schema}.${prefix}`).digest('hex').slice(0, 16)}`;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5_000;

    if (options.pool && options.connectionString === undefined) {
      this.pool = options.pool;
      this.ownsPool = false;
      this.listenConfig = { ...options.pool.options };
    } else if (typeof options.connectionString === 'string' && !options.pool) {
      const config: PoolConfig = {
        max: 4,
        connectionTimeoutMillis: 5_000,
        ...options.poolConfig,
        connectionString: options.connectionString,
      };
      this.pool = new pg.Pool(config);
      // An idle connection that dies emits on the pool; unhandled, that would crash the process.
      this.pool.on('error', () => undefined);
      this.ownsPool = true;
      this.listenConfig = config;
    } else {
      throw new EncryptionConfigError(
        MESSAGES.INVALID_KEY_STORE_OPTION('PostgresKeyStore needs exactly one of connectionString or pool'),
      );
    }
  }

  async load(): Promise<StoredKeyRing | undefined> {
    await this.ready();
    const { rows } = await this.pool.query<{ revision: string; ring: unknown }>(
      `SELECT revision, ring FROM ${this.tables.ring} WHERE id = $1`,
      [RING_ROW_ID],
    );
    if (rows.length === 0) return undefined;
    const ring = rows[0].ring;
    if (typeof ring !== 'object' || ring === null) return parseStoredKeyRing(ring, this.location);
    return parseStoredKeyRing({ ...ring, revision: Number(rows[0].revision) }, this.location);
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    assertSaveable(ring, expectedRevision);
    await this.ready();
    const json = JSON.stringify(ring);
    // One statement = one transaction: the notification is sent if and only if the write commits.
    const result =
      expectedRevision === 0
        ? await this.pool.query(
            `WITH written AS (
               INSERT INTO ${this.tables.ring} (id, revision, ring) VALUES ($1, $2, $3::jsonb)
               ON CONFLICT (id) DO NOTHING RETURNING revision
             ) SELECT pg_notify($4, revision::text) FROM written`,
            [RING_ROW_ID, ring.revision, json, this.channel],
          )
        : await this.pool.query(
            `WITH written AS (
               UPDATE ${this.tables.ring} SET revision = $2, ring = $3::jsonb, updated_at = now()
               WHERE id = $1 AND revision = $4 RETURNING revision
             ) SELECT pg_notify($5, revision::text) FROM written`,
            [RING_ROW_ID, ring.revision, json, expectedRevision, this.channel],
          );
    return result.rowCount === 1;
  }

  async watch(onChange: (revision: number) => void): Promise<() => Promise<void>> {
    await this.ready();
    const listener = (this.listener ??= new Listener(
      this.listenConfig,
      this.channel,
      `SELECT revision FROM ${this.tables.ring} WHERE id = ${RING_ROW_ID}`,
      this.maxReconnectDelayMs,
    ));
    try {
      await listener.add(onChange);
    } catch (error) {
      if (listener.size === 0 && this.listener === listener) this.listener = undefined;
      throw error;
    }
    return async () => {
      if (listener.remove(onChange) === 0) {
        if (this.listener === listener) this.listener = undefined;
        await listener.stop();
      }
    };
  }

  async heartbeat(beat: InstanceHeartbeat, ttlMs: number): Promise<void> {
    await this.ready();
    await this.pool.query(
      `INSERT INTO ${this.tables.instances} (instance_id, revision, beat_at, expires_at)
       VALUES ($1, $2, $3, clock_timestamp() + $4::double precision * interval '1 millisecond')
       ON CONFLICT (instance_id) DO UPDATE
       SET revision = EXCLUDED.revision, beat_at = EXCLUDED.beat_at, expires_at = EXCLUDED.expires_at`,
      [beat.instanceId, beat.revision, beat.at, ttlMs],
    );
    // Best effort: a failed clean-up only leaves rows that instances() already ignores.
    await this.pool
      .query(`DELETE FROM ${this.tables.instances} WHERE expires_at < clock_timestamp() - interval '1 hour'`)
      .catch(() => undefined);
  }

  async instances(): Promise<InstanceHeartbeat[]> {
    await this.ready();
    const { rows } = await this.pool.query<{ instance_id: string; revision: string; beat_at: string }>(
      `SELECT instance_id, revision, beat_at FROM ${this.tables.instances}
       WHERE expires_at > clock_timestamp() ORDER BY instance_id`,
    );
    return rows.map((row) => ({ instanceId: row.instance_id, revision: Number(row.revision), at: row.beat_at }));
  }

  async addUsage(deltas: KeyUsageDelta[]): Promise<void> {
    const merged = mergeUsageDeltas(deltas);
    if (merged.length === 0) return;
    await this.ready();
    // Rows go in key id order, so concurrent batches lock them in the same order and can't deadlock.
    await this.pool.query(
      `INSERT INTO ${this.tables.usage} AS t (key_id, encryptions, decryptions, last_used_at)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
       ON CONFLICT (key_id) DO UPDATE SET
         encryptions = t.encryptions + EXCLUDED.encryptions,
         decryptions = t.decryptions + EXCLUDED.decryptions,
         last_used_at = GREATEST(t.last_used_at, EXCLUDED.last_used_at)`,
      [
        merged.map(([keyId]) => keyId),
        merged.map(([, usage]) => Math.trunc(usage.encryptions)),
        merged.map(([, usage]) => Math.trunc(usage.decryptions)),
        merged.map(([, usage]) => Math.trunc(usage.lastUsedAt)),
      ],
    );
  }

  async loadUsage(): Promise<Record<string, StoredKeyUsage>> {
    await this.ready();
    const { rows } = await this.pool.query<{
      key_id: string;
      encryptions: string;
      decryptions: string;
      last_used_at: string;
    }>(`SELECT key_id, encryptions, decryptions, last_used_at FROM ${this.tables.usage}`);
    return Object.fromEntries(
      rows.map((row) => [
        row.key_id,
        {
          encryptions: Number(row.encryptions),
          decryptions: Number(row.decryptions),
          lastUsedAt: Number(row.last_used_at),
        },
      ]),
    );
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /** Stops watching and ends the pool if the store opened it; a pool that was passed in stays open. */
  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    await listener?.stop();
    if (this.ownsPool && !this.closed) {
      this.closed = true;
      await this.pool.end();
    }
  }

  /** Runs the migration once per store; a failed attempt is retried by the next call. */
  private ready(): Promise<void> {
    this.migration ??= this.migrate().catch((error: unknown) => {
      this.migration = undefined;
      throw error;
    });
    return this.migration;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    let failure: unknown;
    try {
      // Checked first: a role that may use the tables but not create anything still boots.
      if (await this.tablesExist(client)) return;
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
      const schema = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
      if (schema.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(this.schema)}`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.tables.ring} (
          id smallint PRIMARY KEY CHECK (id = ${RING_ROW_ID}),
          revision bigint NOT NULL CHECK (revision > 0),
          ring jsonb NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now()
        )`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.tables.instances} (
          instance_id text PRIMARY KEY,
          revision bigint NOT NULL,
          beat_at text NOT NULL,
          expires_at timestamptz NOT NULL
        )`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.tables.usage} (
          key_id text PRIMARY KEY,
          encryptions bigint NOT NULL DEFAULT 0,
          decryptions bigint NOT NULL DEFAULT 0,
          last_used_at bigint NOT NULL DEFAULT 0
        )`);
      await client.query('COMMIT');
    } catch (error) {
      failure = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(failure instanceof Error ? failure : undefined);
    }
  }

  private async tablesExist(client: PoolClient): Promise<boolean> {
    const { rows } = await client.query<{ missing: number }>(
      `SELECT count(*) FILTER (WHERE to_regclass(name) IS NULL)::int AS missing FROM unnest($1::text[]) AS name`,
      [Object.values(this.tables)],
    );
    return rows[0].missing === 0;
  }
}

/**
 * The dedicated LISTEN connection shared by a store's watchers. It is re-opened with backoff after it
 * drops, and every watcher is then called with the stored revision.
 */
class Listener {
  private readonly callbacks = new Set<(revision: number) => void>();
  private client?: Client;
  private starting?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly config: ClientConfig,
    private readonly channel: string,
    private readonly revisionQuery: string,
    private readonly maxDelayMs: number,
  ) {}

  get size(): number {
    return this.callbacks.size;
  }

  async add(onChange: (revision: number) => void): Promise<void> {
    this.starting ??= this.connect(false).catch((error: unknown) => {
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

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(reconnecting: boolean): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (message.channel !== this.channel || this.client !== client) return;
      const revision = Number(message.payload);
      if (Number.isSafeInteger(revision)) for (const callback of this.callbacks) notify(callback, revision);
    });
    try {
      await client.connect();
      // Named so operators (and tests) can find this connection in pg_stat_activity.
      await client.query(`SELECT set_config('application_name', $1, false)`, [`nestjs-encryption:${this.channel}`]);
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      const { rows } = await client.query<{ revision: string }>(this.revisionQuery);
      if (this.stopped) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.failures = 0;
      if (reconnecting) {
        // Saves made while we were away sent notifications nobody heard: let watchers catch up.
        const revision = Number(rows[0]?.revision ?? 0);
        for (const callback of this.callbacks) notify(callback, revision);
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = Math.min(100 * 2 ** this.failures, this.maxDelayMs) * (0.5 + Math.random() / 2);
    this.failures++;
    this.timer = setTimeout(() => {
      this.connect(true).catch(() => this.scheduleReconnect());
    }, delay);
    this.timer.unref();
  }
}

function assertIdentifier(name: string, option: string): void {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_LENGTH) {
    throw new EncryptionConfigError(
      MESSAGES.INVALID_KEY_STORE_OPTION(
        `${option} must be letters, digits and underscores, not start with a digit, and name tables of at most ${MAX_IDENTIFIER_LENGTH} bytes`,
      ),
    );
  }
}
