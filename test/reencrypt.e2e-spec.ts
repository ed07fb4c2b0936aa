import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ciphertextKeyId, FileKeyStore } from 'nestjs-encryption';
import pg from 'pg';

import type { CliBuild } from './support/cli-build.js';
import { buildCli } from './support/cli-build.js';
import type { CliRun } from './support/cli-process.js';
import { runCli, startCli } from './support/cli-process.js';
import type { EncryptionTestApp } from './support/encryption-test-app.js';
import { createEncryptionTestApp } from './support/encryption-test-app.js';
import { dropSchema, POSTGRES_URL } from './support/key-store-services.js';

const ROWS = 100_000;
const BATCH = 1000;
const SLOW = 300_000;

let build: CliBuild;
let dir: string;
let app: EncryptionTestApp;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  build = buildCli();
  dir = mkdtempSync(join(tmpdir(), 'nestjs-encryption-reencrypt-'));
  const masterKey = randomBytes(32).toString('base64');
  const ringPath = join(dir, 'keyring.json');
  // The application: it made the ciphertexts, and keeps writing while the job runs.
  app = await createEncryptionTestApp({ masterKey, keyStore: new FileKeyStore(ringPath) });
  env = {
    KEY_STORE: 'file',
    KEY_STORE_PATH: ringPath,
    MASTER_KEY: masterKey,
    NESTJS_ENCRYPTION_STATE_DIR: join(dir, 'state'),
  };
});

afterAll(async () => {
  await app?.close();
  build?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Rows or lines done, from a non-terminal progress line: `progress: 31,000/100,000 rows (31.0%), ...`. */
function progressDone(line: string): number | undefined {
  const match = /^progress: ([\d,]+)\//.exec(line);
  return match ? Number(match[1].replace(/,/g, '')) : undefined;
}

/** The same from a `--json` progress line (`{"event":"progress","done":31000,...}`); 0 for other lines. */
function jsonProgress(line: string): number {
  if (!line.startsWith('{"event":"progress"')) return 0;
  return (JSON.parse(line) as { done: number }).done;
}

function summary(run: CliRun): Record<string, unknown> {
  try {
    return JSON.parse(run.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`no JSON summary (exit ${run.code}, signal ${run.signal}):\n${run.stdout}\n${run.stderr}`);
  }
}

function checkpoints(): { done: number; after?: string; inputOffset?: number }[] {
  const directory = join(dir, 'state/checkpoints');
  if (!existsSync(directory)) return [];
  return readdirSync(directory)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(directory, name), 'utf8')) as { done: number });
}

describe('reencrypt a PostgreSQL table', () => {
  const schema = `cli_reencrypt_${process.pid}_${randomBytes(3).toString('hex')}`;
  const table = `${schema}.customers`;
  let db: pg.Client;

  beforeAll(async () => {
    db = new pg.Client({ connectionString: POSTGRES_URL });
    await db.connect();
    await db.query(`CREATE SCHEMA ${schema}`);
  });

  afterAll(async () => {
    await db?.end();
    await dropSchema(schema);
  });

  it(
    `moves ${ROWS.toLocaleString('en-US')} rows to the active key in batches, killed part way and resumed, without losing a value or overwriting the application's updates`,
    async () => {
      const timings: Record<string, number> = {};
      let mark = performance.now();
      const lap = (name: string) => {
        timings[name] = Math.round(performance.now() - mark);
        mark = performance.now();
      };

      // 100,000 customers under the first key; every 10th also has a binary (bytea) envelope.
      await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, email text NOT NULL, note bytea)`);
      const oldKey = app.keys.activeKey.id;
      const emailOf = (id: number) => `user${id}@example.com`;
      const noteOf = (id: number) => Buffer.from(`note ${id}`);
      for (let start = 1; start <= ROWS; start += 20_000) {
        const ids: number[] = [];
        const emails: string[] = [];
        const notes: (Buffer | null)[] = [];
        for (let id = start; id < start + 20_000; id++) {
          ids.push(id);
          emails.push(await app.encryption.encryptToString(emailOf(id)));
          notes.push(id % 10 === 0 ? await app.encryption.encrypt(noteOf(id)) : null);
        }
        await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])`, [
          ids,
          emails,
          notes,
        ]);
      }
      lap('encrypt and insert');
      const newKey = (await app.keys.rotate()).id;
      expect(newKey).not.toBe(oldKey);

      // Rows the application will be updating (transaction open) when the job reaches them; the random
      // updates below leave them alone, so the job certainly reads their old values first. Chosen after
      // run 1, inside one batch of the resumed run (batches start at the checkpoint), so the job reads
      // all of them before the application commits.
      let locked: number[] = [];
      // The application keeps updating random customers with fresh ciphertexts of new values.
      const appWrites = new Map<number, { value: string; ciphertext: string }>();
      const appDb = new pg.Client({ connectionString: POSTGRES_URL });
      await appDb.connect();
      let writing = true;
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          const id = randomInt(1, ROWS + 1);
          if (locked.includes(id)) continue;
          const value = `changed-${n}@example.com`;
          const ciphertext = await app.encryption.encryptToString(value);
          await appDb.query(`UPDATE ${table} SET email = $1 WHERE id = $2`, [ciphertext, id]);
          appWrites.set(id, { value, ciphertext });
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();

      const args = [
        'reencrypt',
        '--table',
        table,
        '--columns',
        'email,note',
        '--key-column',
        'id',
        '--connection',
        POSTGRES_URL,
      ];
      const options = ['--batch-size', String(BATCH), '--progress-interval', '0', '--json'];
      try {
        // Run 1: killed (SIGKILL, no chance to clean up) once a third of the table is done.
        const first = startCli(build.main, [...args, ...options], { env, cwd: dir });
        await first.waitForStderrLine((text) => jsonProgress(text) >= ROWS / 3);
        first.child.kill('SIGKILL');
        expect((await first.done).signal).toBe('SIGKILL');
        const [checkpoint] = checkpoints();
        expect(checkpoint.done).toBeGreaterThanOrEqual(ROWS / 3);
        expect(checkpoint.done).toBeLessThan(ROWS);
        expect(Number(checkpoint.after)).toBe(checkpoint.done); // ids 1..N, N rows done
        lap('run 1 (killed)');

        // Rows ahead of the checkpoint that the application is updating right now (its transaction is
        // open): the job reads the old values, and its compare-and-set must not overwrite the new ones.
        const batchesAhead = Math.max(1, Math.min(20, Math.floor((ROWS - Number(checkpoint.after)) / BATCH) - 1));
        const firstLocked = Number(checkpoint.after) + batchesAhead * BATCH + 1;
        locked = Array.from({ length: 10 }, (_, i) => firstLocked + i * 37);
        const lockHolder = new pg.Client({ connectionString: POSTGRES_URL });
        await lockHolder.connect();
        await lockHolder.query('BEGIN');
        for (const id of locked) {
          const value = `locked-${id}@example.com`;
          const ciphertext = await app.encryption.encryptToString(value);
          await lockHolder.query(`UPDATE ${table} SET email = $1 WHERE id = $2`, [ciphertext, id]);
          appWrites.set(id, { value, ciphertext });
        }

        // Run 2: resumes from the checkpoint.
        const second = startCli(build.main, [...args, ...options], { env, cwd: dir });
        let secondExited = false;
        void second.done.then(() => (secondExited = true));
        const firstProgress = await second.waitForStderrLine((text) => jsonProgress(text) > 0);
        expect(jsonProgress(firstProgress)).toBeGreaterThan(checkpoint.done);
        // Once the job's UPDATE waits for the application's row locks, the application commits.
        for (;;) {
          if (secondExited)
            throw new Error(`the job ended without waiting for the locked rows:\n${(await second.done).stderr}`);
          const { rows } = await db.query(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
            [`UPDATE "${schema}"."customers" AS t SET%`],
          );
          if (rows[0].waiting > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await lockHolder.query('COMMIT');
        await lockHolder.end();
        const resumed = await second.done;
        lap('run 2 (resumed)');
        writing = false;
        await writer;

        expect(resumed.code).toBe(0);
        const result = summary(resumed);
        expect(result).toMatchObject({
          kind: 'postgres',
          resumed: true,
          interrupted: false,
          rows: ROWS,
          failed: 0,
          activeKeyId: newKey,
        });
        expect(result.unusedKeyIds).toEqual([oldKey]);
        expect(result.changedMeanwhile).toBeGreaterThanOrEqual(locked.length);
        expect(result.keys).toEqual({ [newKey]: result.values });
        expect(result.values).toBe(ROWS + ROWS / 10);
        expect(checkpoints()).toEqual([]);

        // Every row decrypts to its value, under the active key; the application's updates are its own.
        const { rows } = await db.query<{ id: string; email: string; note: Buffer | null }>(
          `SELECT id, email, note FROM ${table} ORDER BY id`,
        );
        expect(rows).toHaveLength(ROWS);
        let mismatches = 0;
        for (const row of rows) {
          const id = Number(row.id);
          const written = appWrites.get(id);
          if (ciphertextKeyId(row.email) !== newKey) mismatches++;
          else if ((await app.encryption.decrypt(row.email)) !== (written?.value ?? emailOf(id))) mismatches++;
          else if (written && row.email !== written.ciphertext) mismatches++;
          if (id % 10 === 0) {
            const note = row.note!;
            if (ciphertextKeyId(note) !== newKey || !noteOf(id).equals(await app.encryption.decrypt<Buffer>(note)))
              mismatches++;
          } else if (row.note !== null) {
            mismatches++;
          }
        }
        expect(mismatches).toBe(0);
        for (const id of locked) expect(rows[id - 1].email).toBe(appWrites.get(id)!.ciphertext);
        expect(appWrites.size).toBeGreaterThan(locked.length);
        lap('verify');
        process.stdout.write(
          `reencrypt ${ROWS} rows: ${JSON.stringify(timings)} ms; application updates during the job: ${appWrites.size}; changed meanwhile: ${String(result.changedMeanwhile)}\n`,
        );
      } finally {
        writing = false;
        await writer.catch(() => undefined);
        await appDb.end();
      }

      // Afterwards keys list shows the old key unused by this table.
      const list = await runCli(build.main, ['keys', 'list', '--json'], { env, cwd: dir });
      const keys = (JSON.parse(list.stdout) as { keys: { id: string; data: { status: string } }[] }).keys;
      expect(keys.find((key) => key.id === oldKey)!.data.status).toBe('unused');
    },
    SLOW,
  );

  it(
    "rebuilds each value's context from --context-template, and reports a value whose context column is NULL",
    async () => {
      const contextTable = `${schema}.secrets`;
      await db.query(`CREATE TABLE ${contextTable} (code text PRIMARY KEY, tenant text, secret text)`);
      const rows = [
        { code: 'a-1', tenant: 'acme' },
        { code: 'b-2', tenant: 'globex' },
        { code: 'c-3', tenant: null },
      ];
      for (const row of rows) {
        const context = `${row.tenant ?? ''}/${row.code}/secret`;
        await db.query(`INSERT INTO ${contextTable} VALUES ($1, $2, $3)`, [
          row.code,
          row.tenant,
          await app.encryption.encryptToString(`secret ${row.code}`, { context }),
        ]);
      }
      const before = app.keys.activeKey.id;
      await app.keys.rotate();
      const run = await runCli(
        build.main,
        [
          'reencrypt',
          '--table',
          contextTable,
          '--columns',
          'secret',
          '--key-column',
          'code',
          '--context-template',
          '{tenant}/{code}/{column}',
          '--json',
        ],
        { env: { ...env, DATABASE_URL: POSTGRES_URL }, cwd: dir },
      );
      expect(run.code).toBe(2);
      expect(summary(run)).toMatchObject({
        rows: 3,
        rewritten: 2,
        failed: 1,
        failures: [
          {
            location: 'code=c-3 column=secret',
            code: 'CONTEXT_MISSING',
            reason: "the context template's {tenant} is NULL in this row",
            keyId: before,
          },
        ],
      });
      const { rows: stored } = await db.query<{ code: string; tenant: string; secret: string }>(
        `SELECT * FROM ${contextTable} ORDER BY code`,
      );
      for (const row of stored.slice(0, 2)) {
        expect(ciphertextKeyId(row.secret)).toBe(app.keys.activeKey.id);
        await expect(app.encryption.decrypt(row.secret, { context: `${row.tenant}/${row.code}/secret` })).resolves.toBe(
          `secret ${row.code}`,
        );
      }
      expect(ciphertextKeyId(stored[2].secret)).toBe(before);
    },
    SLOW,
  );

  it(
    'refuses (exit 1) a key column without a unique index and a column that cannot hold ciphertexts',
    async () => {
      const loose = `${schema}.loose`;
      await db.query(`CREATE TABLE ${loose} (id int, secret text, amount int)`);
      const [notUnique, notText] = await Promise.all([
        runCli(build.main, ['reencrypt', '--table', loose, '--columns', 'secret', '--connection', POSTGRES_URL], {
          env,
          cwd: dir,
        }),
        runCli(
          build.main,
          [
            'reencrypt',
            '--table',
            `${schema}.customers`,
            '--columns',
            'id',
            '--key-column',
            'email',
            '--connection',
            POSTGRES_URL,
          ],
          { env, cwd: dir },
        ),
      ]);
      expect(notUnique.code).toBe(1);
      expect(notUnique.stderr).toContain(
        `--key-column id needs a unique index of its own (normally the primary key) to page through ${loose}`,
      );
      expect(notText.code).toBe(1);
      expect(notText.stderr).toContain(
        'Column id is bigint: reencrypt handles text (base64url ciphertexts) and bytea (binary) columns',
      );
    },
    SLOW,
  );
});

describe('reencrypt a JSON Lines file', () => {
  const LINES = 20_000;

  it(
    'is killed part way (the file is untouched), stopped by SIGINT (exit 130), resumed, and swapped in at the end',
    async () => {
      const file = join(dir, 'customers.jsonl');
      const values: string[] = [];
      const lines: string[] = [];
      for (let i = 0; i < LINES; i++) {
        values.push(`customer ${i}`);
        lines.push(
          JSON.stringify({ id: i, profile: { email: await app.encryption.encryptToString(values[i]) }, plain: i % 7 }),
        );
      }
      const original = lines.join('\n') + '\n';
      writeFileSync(file, original);
      const oldKey = app.keys.activeKey.id;
      const newKey = (await app.keys.rotate()).id;
      const args = [
        'reencrypt',
        '--input',
        file,
        '--fields',
        'profile.email',
        '--batch-size',
        '500',
        '--progress-interval',
        '0',
      ];

      const first = startCli(build.main, args, { env, cwd: dir });
      await first.waitForStderrLine((line) => (progressDone(line) ?? 0) >= 5_000);
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      expect(readFileSync(file, 'utf8')).toBe(original); // readers still see the whole old file
      const [afterKill] = checkpoints();
      expect(afterKill.done).toBeGreaterThanOrEqual(5_000);
      expect(readdirSync(dir).filter((name) => name.startsWith('.customers.jsonl.reencrypt-'))).toHaveLength(1);

      const second = startCli(build.main, [...args, '--json'], { env, cwd: dir });
      await second.waitForStderrLine((line) => jsonProgress(line) > afterKill.done);
      second.child.kill('SIGINT');
      const interrupted = await second.done;
      expect(interrupted.code).toBe(130);
      expect(summary(interrupted)).toMatchObject({ interrupted: true, resumed: true });
      expect(readFileSync(file, 'utf8')).toBe(original);
      const [afterInterrupt] = checkpoints();
      expect(afterInterrupt.done).toBeGreaterThan(afterKill.done);

      const third = await runCli(build.main, [...args, '--json'], { env, cwd: dir });
      expect(third.code).toBe(0);
      expect(summary(third)).toMatchObject({
        resumed: true,
        lines: LINES,
        values: LINES,
        rewritten: LINES,
        alreadyCurrent: 0,
        failed: 0,
        keys: { [newKey]: LINES },
        unusedKeyIds: expect.arrayContaining([oldKey]),
        output: file,
      });
      const rewritten = readFileSync(file, 'utf8').split('\n');
      expect(rewritten).toHaveLength(LINES + 1);
      expect(rewritten[LINES]).toBe('');
      for (let i = 0; i < LINES; i++) {
        const line = JSON.parse(rewritten[i]) as { id: number; profile: { email: string }; plain: number };
        expect(line.id === i && line.plain === i % 7 && ciphertextKeyId(line.profile.email) === newKey).toBe(true);
        if ((await app.encryption.decrypt(line.profile.email)) !== values[i])
          throw new Error(`line ${i + 1} does not decrypt to its value`);
      }
      expect(readdirSync(dir).filter((name) => name.startsWith('.customers.jsonl.reencrypt-'))).toEqual([]);
      expect(checkpoints()).toEqual([]);
    },
    SLOW,
  );

  it(
    'refuses to run twice on the same file at once (exit 2), while the first run holds it',
    async () => {
      const file = join(dir, 'busy.jsonl');
      const lines: string[] = [];
      for (let i = 0; i < 2_000; i++)
        lines.push(JSON.stringify({ secret: await app.encryption.encryptToString(`v${i}`) }));
      writeFileSync(file, lines.join('\n') + '\n');
      await app.keys.rotate();
      const args = [
        'reencrypt',
        '--input',
        file,
        '--fields',
        'secret',
        '--batch-size',
        '100',
        '--progress-interval',
        '0',
      ];
      const running = startCli(build.main, args, { env, cwd: dir });
      await running.waitForStderrLine((line) => line.startsWith('progress:'));
      running.child.kill('SIGSTOP'); // alive, holding the job, but going nowhere until SIGCONT
      try {
        const second = await runCli(build.main, [...args, '--json'], { env, cwd: dir });
        expect(second.code).toBe(2);
        const error = JSON.parse(second.stderr.trim().split('\n').pop()!).error as { code: string; message: string };
        expect(error.code).toBe('JOB_LOCKED');
        expect(error.message).toContain(`(pid ${running.child.pid} on `);
      } finally {
        running.child.kill('SIGCONT');
      }
      const first = await running.done;
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/\n  rewritten +2,000\n/);
    },
    SLOW,
  );
});
