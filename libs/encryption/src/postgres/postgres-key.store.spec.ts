import pg from 'pg';

import { eventually, randomNamespace, sampleRing } from '../../../../test/support/key-store-contract.js';
import { dropSchema, POSTGRES_URL } from '../../../../test/support/key-store-services.js';
import { EncryptionConfigError, KeyStoreCorruptError } from '../errors/encryption.errors.js';
import { PostgresKeyStore } from './postgres-key.store.js';

describe('PostgresKeyStore', () => {
  let schema: string;
  let admin: pg.Pool;
  const stores: PostgresKeyStore[] = [];
  const open = (options: Partial<ConstructorParameters<typeof PostgresKeyStore>[0]> = {}) => {
    const store = new PostgresKeyStore({ connectionString: POSTGRES_URL, schema, ...options } as ConstructorParameters<
      typeof PostgresKeyStore
    >[0]);
    stores.push(store);
    return store;
  };
  const tablesIn = async (name: string) =>
    (
      await admin.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [name],
      )
    ).rows.map((row) => row.table_name);

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  });

  afterAll(() => admin.end());

  beforeEach(() => {
    schema = randomNamespace();
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await dropSchema(schema);
  });

  describe('schema and tables', () => {
    it('creates its schema and prefixed tables on first use, in the configured schema only', async () => {
      await expect(tablesIn(schema)).resolves.toEqual([]);
      await open().load();
      await expect(tablesIn(schema)).resolves.toEqual([
        'nestjs_encryption_instances',
        'nestjs_encryption_key_ring',
        'nestjs_encryption_key_usage',
      ]);
      await open({ tablePrefix: 'tenant_a_' }).save(sampleRing(1), 0);
      await open({ tablePrefix: '' }).load();
      await expect(tablesIn(schema)).resolves.toEqual([
        'instances',
        'key_ring',
        'key_usage',
        'nestjs_encryption_instances',
        'nestjs_encryption_key_ring',
        'nestjs_encryption_key_usage',
        'tenant_a_instances',
        'tenant_a_key_ring',
        'tenant_a_key_usage',
      ]);
      // Prefixes are separate rings.
      await expect(open().load()).resolves.toBeUndefined();
      await expect(open({ tablePrefix: 'tenant_a_' }).load()).resolves.toStrictEqual(sampleRing(1));
    });

    it('stores the ring as one row: revision column plus JSONB', async () => {
      await open().save(sampleRing(1), 0);
      await open().save(sampleRing(2, 'b'), 1);
      const { rows } = await admin.query(
        `SELECT id, revision, ring FROM ${pg.escapeIdentifier(schema)}.nestjs_encryption_key_ring`,
      );
      expect(rows).toEqual([{ id: 1, revision: '2', ring: sampleRing(2, 'b') }]);
    });

    it('migration is idempotent when 8 instances boot at once on a fresh schema, and keeps existing data', async () => {
      const fleet = Array.from({ length: 8 }, () => open());
      await expect(Promise.all(fleet.map((store) => store.load()))).resolves.toEqual(Array(8).fill(undefined));
      await expect(tablesIn(schema)).resolves.toHaveLength(3);
      const results = await Promise.all(fleet.map((store, i) => store.save(sampleRing(1, `boot${i}`), 0)));
      expect(results.filter(Boolean)).toHaveLength(1);
      // A second wave of fresh instances migrates again (a no-op) and sees the data.
      const winner = `boot${results.indexOf(true)}`;
      const again = await Promise.all(Array.from({ length: 8 }, () => open().load()));
      expect(again).toEqual(Array(8).fill(sampleRing(1, winner)));
    });

    it('a role that may use but not create the tables still boots once they exist', async () => {
      await open().load();
      const role = `${schema}_user`;
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      try {
        await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
        await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
        const url = new URL(POSTGRES_URL);
        url.username = role;
        const limited = open({ connectionString: url.toString() });
        await expect(limited.save(sampleRing(1), 0)).resolves.toBe(true);
        await expect(limited.load()).resolves.toStrictEqual(sampleRing(1));
        await limited.close();
      } finally {
        await admin.query(`DROP OWNED BY ${role}`);
        await admin.query(`DROP ROLE ${role}`);
      }
    });
  });

  describe('options', () => {
    it.each([
      ['schema', { schema: 'public; DROP TABLE users; --' }],
      ['schema', { schema: 'a"b' }],
      ['schema', { schema: '' }],
      ['schema', { schema: '1abc' }],
      ['schema', { schema: 'x'.repeat(64) }],
      ['schema', { schema: 'naïve' }],
      ['tablePrefix', { tablePrefix: 'x"; DROP SCHEMA public CASCADE; --' }],
      ['tablePrefix', { tablePrefix: '9_' }],
      ['tablePrefix', { tablePrefix: 'p'.repeat(60) }],
    ])('refuses an unsafe %s (%j) in the constructor, before any SQL runs', (option, bad) => {
      expect(() => new PostgresKeyStore({ connectionString: POSTGRES_URL, ...bad })).toThrow(EncryptionConfigError);
      expect(() => new PostgresKeyStore({ connectionString: POSTGRES_URL, ...bad })).toThrow(
        `Invalid key store options: ${option} must be letters, digits and underscores, not start with a digit, and name tables of at most 63 bytes`,
      );
    });

    it('accepts mixed case and keeps it (identifiers are always quoted)', async () => {
      schema = `Ks_${randomNamespace()}`;
      await open().save(sampleRing(1), 0);
      await expect(tablesIn(schema)).resolves.toHaveLength(3);
      await expect(tablesIn(schema.toLowerCase())).resolves.toEqual([]);
    });

    it('needs exactly one of connectionString or pool', () => {
      const message = 'Invalid key store options: PostgresKeyStore needs exactly one of connectionString or pool';
      expect(() => new PostgresKeyStore({} as never)).toThrow(message);
      expect(() => new PostgresKeyStore({ connectionString: POSTGRES_URL, pool: admin } as never)).toThrow(message);
    });

    it('an existing pool is used and left open by close(); its own pool is ended by close()', async () => {
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 3 });
      try {
        const shared = new PostgresKeyStore({ pool, schema });
        await shared.save(sampleRing(1), 0);
        const heard: number[] = [];
        await shared.watch((revision) => heard.push(revision));
        await open().save(sampleRing(2), 1);
        await eventually(() => expect(heard).toEqual([2]));
        await shared.close();
        expect(pool.ended).toBe(false);
        await expect(pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
        await expect(new PostgresKeyStore({ pool, schema }).load()).resolves.toStrictEqual(sampleRing(2));
      } finally {
        await pool.end();
      }
      const own = new PostgresKeyStore({ connectionString: POSTGRES_URL, schema });
      await own.ping();
      await own.close();
      await expect(own.ping()).rejects.toThrow();
    });

    it('fails fast (does not hang) when the database is unreachable', async () => {
      const down = open({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
      const started = Date.now();
      await expect(down.ping()).rejects.toThrow(/ECONNREFUSED/);
      await expect(down.load()).rejects.toThrow(/ECONNREFUSED/);
      await expect(down.watch(() => undefined)).rejects.toThrow(/ECONNREFUSED/);
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });

  describe('reading back', () => {
    it.each([
      ['a JSON string', `'"garbage"'`, /not a key ring object/],
      ['keys that are not an array', `'{"keys": "nope"}'`, /keys is not an array/],
      ['a key without an id', `'{"keys": [{"version": 1}]}'`, /key 0 has no id/],
    ])('a ring row holding %s is a KeyStoreCorruptError naming the table', async (_, json, reason) => {
      const store = open();
      await store.save(sampleRing(1), 0);
      await admin.query(`UPDATE ${pg.escapeIdentifier(schema)}.nestjs_encryption_key_ring SET ring = ${json}::jsonb`);
      const error = await store.load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyStoreCorruptError);
      expect((error as Error).message).toMatch(reason);
      expect((error as Error).message).toContain(`PostgreSQL table ${schema}.nestjs_encryption_key_ring`);
    });
  });

  describe('watch', () => {
    const terminateListener = async (store: PostgresKeyStore) => {
      const { rowCount } = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [`nestjs-encryption:${store.channel}`],
      );
      return rowCount;
    };

    it('re-listens after its connection is killed, then tells watchers the stored revision so they catch up', async () => {
      const watcher = open({ maxReconnectDelayMs: 200 });
      const writer = open();
      const heard: number[] = [];
      await watcher.watch((revision) => heard.push(revision));
      await writer.save(sampleRing(1), 0);
      await eventually(() => expect(heard).toEqual([1]));

      await expect(terminateListener(watcher)).resolves.toBe(1);
      // No save happened: the extra call is the catch-up after reconnecting.
      await eventually(() => expect(heard).toEqual([1, 1]));
      await writer.save(sampleRing(2), 1);
      await eventually(() => expect(heard).toEqual([1, 1, 2]));

      // A save made while the listener is down is not lost either.
      await expect(terminateListener(watcher)).resolves.toBe(1);
      await writer.save(sampleRing(3), 2);
      await eventually(() => expect(heard.at(-1)).toBe(3));
      await writer.save(sampleRing(4), 3);
      await eventually(() => expect(heard.at(-1)).toBe(4));
    });

    it('one listening connection serves all watchers of a store; the last stop closes it', async () => {
      const store = open();
      const count = async () =>
        Number(
          (
            await admin.query('SELECT count(*) FROM pg_stat_activity WHERE application_name = $1', [
              `nestjs-encryption:${store.channel}`,
            ])
          ).rows[0].count,
        );
      const stopA = await store.watch(() => undefined);
      const stopB = await store.watch(() => undefined);
      await expect(count()).resolves.toBe(1);
      await stopA();
      await expect(count()).resolves.toBe(1);
      await stopB();
      await eventually(async () => expect(await count()).toBe(0));
    });

    it('stores in different schemas use different channels and do not hear each other', async () => {
      const otherSchema = randomNamespace();
      try {
        const other = open({ schema: otherSchema });
        const heard: number[] = [];
        await open().watch((revision) => heard.push(revision));
        expect(other.channel).not.toBe(open().channel);
        await other.save(sampleRing(1), 0);
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect(heard).toEqual([]);
      } finally {
        await dropSchema(otherSchema);
      }
    });
  });

  describe('heartbeats and usage', () => {
    it('instances() uses the database clock: a beat is live for its TTL whatever the caller clock says', async () => {
      const store = open();
      await store.heartbeat({ instanceId: 'a', revision: 7, at: '1999-01-01T00:00:00.000Z' }, 60_000);
      await expect(store.instances()).resolves.toEqual([{ instanceId: 'a', revision: 7, at: '1999-01-01T00:00:00.000Z' }]);
      const { rows } = await admin.query(
        `SELECT expires_at - now() BETWEEN interval '55 seconds' AND interval '61 seconds' AS ok
         FROM ${pg.escapeIdentifier(schema)}.nestjs_encryption_instances`,
      );
      expect(rows).toEqual([{ ok: true }]);
    });

    it('addUsage keeps counts beyond 32 bits', async () => {
      const store = open();
      await store.addUsage([{ keyId: 'big', encryptions: 2 ** 40, decryptions: 3_000_000_000, lastUsedAt: Date.UTC(2030, 0) }]);
      await store.addUsage([{ keyId: 'big', encryptions: 2 ** 40, decryptions: 3_000_000_000, lastUsedAt: 0 }]);
      await expect(store.loadUsage()).resolves.toEqual({
        big: { encryptions: 2 ** 41, decryptions: 6_000_000_000, lastUsedAt: Date.UTC(2030, 0) },
      });
    });
  });
});
