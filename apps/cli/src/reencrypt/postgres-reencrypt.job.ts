import { ciphertextKeyId } from 'nestjs-encryption';
import type { Client } from 'pg';

import { CliError, EXIT, notFound, usageError } from '../cli.errors.js';
import { redactUrl } from '../config/cli-config.js';
import type { PostgresCheckpoint } from '../state/checkpoint-store.js';
import type { JobEnvironment, ReencryptResult } from './reencrypt-job.js';
import { finishJob, inactiveKeyIds, makeReencryptor, sourceIdOf } from './reencrypt-job.js';
import { ReencryptTally } from './reencrypt-tally.js';
import type { ValueOutcome } from './value-reencryptor.js';

export interface PostgresSourceOptions {
  connectionString: string;
  /** `table` or `schema.table`, as given (case-sensitive, like quoted identifiers). */
  table: string;
  columns: string[];
  /** A column with a unique index of its own (normally the primary key): batches are pages in its order. */
  keyColumn: string;
}

interface ResolvedTable {
  oid: number;
  /** Quoted `"schema"."table"`. */
  sql: string;
  name: string;
  keyType: string;
  /** Column → the array type its values travel as in the batch UPDATE (`text[]` or `bytea[]`). */
  arrayTypes: Record<string, string>;
}

interface Row {
  key: string;
  values: Record<string, unknown>;
  references: Record<string, string | null>;
}

interface PendingWrite {
  key: string;
  column: string;
  old: string | Buffer;
  outcome: Extract<ValueOutcome, { kind: 'rewritten' }>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * Re-encrypts columns of a PostgreSQL table, in batches ordered by a unique key column (keyset
 * pagination, so each batch is one index range scan however far the job is).
 *
 * Each batch is read, decrypted and re-encrypted outside any transaction, then written in one
 * transaction with a compare-and-set per value (`SET col = new WHERE key = k AND col = old`): a value
 * the application changed in the meantime is left as the application wrote it and counted as
 * "changed meanwhile". The checkpoint (last key of the batch) is written after the commit, so a crash
 * repeats at most one batch, whose values are then already current.
 */
export async function reencryptPostgres(options: PostgresSourceOptions, env: JobEnvironment): Promise<ReencryptResult> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: options.connectionString, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a dropped connection fails the next query instead of crashing
  try {
    await client.connect();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      EXIT.UNAVAILABLE,
      'DATA_SOURCE_UNAVAILABLE',
      `Can't connect to ${redactUrl(options.connectionString)}${code ? ` (${code})` : ''}`,
      { cause: error },
    );
  }
  try {
    const table = await resolveTable(client, options, env);
    const source = `${redactUrl(options.connectionString)} ${table.name}(${options.columns.join(', ')})`;
    const sourceId = sourceIdOf(
      `postgres|${client.host}:${client.port}|${client.database}|${table.name}|${options.keyColumn}|${[...options.columns].sort().join(',')}`,
    );
    return await run(client, table, options, env, source, sourceId);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function run(
  client: Client,
  table: ResolvedTable,
  options: PostgresSourceOptions,
  env: JobEnvironment,
  source: string,
  sourceId: string,
): Promise<ReencryptResult> {
  const startedHere = performance.now();
  const release = env.dryRun ? undefined : await env.checkpoints.lock(sourceId);
  try {
    let checkpoint = env.dryRun ? undefined : await env.checkpoints.load<PostgresCheckpoint>(sourceId, 'postgres');
    if (checkpoint && env.restart) {
      await env.checkpoints.remove(sourceId);
      checkpoint = undefined;
    }
    const resumed = checkpoint !== undefined;
    if (checkpoint)
      env.notice(
        `Resuming after ${options.keyColumn} = ${checkpoint.after ?? '(start)'} (${checkpoint.done} rows done on ${checkpoint.startedAt})`,
      );
    const state: PostgresCheckpoint = checkpoint ?? {
      format: 'nestjs-encryption/reencrypt-checkpoint',
      version: 1,
      kind: 'postgres',
      sourceId,
      source,
      startedAt: new Date().toISOString(),
      coveredKeyIds: inactiveKeyIds(env.services),
      done: 0,
      tally: new ReencryptTally().data,
    };
    const tally = new ReencryptTally(state.tally);
    const reencryptor = makeReencryptor(env);
    const key = quote(options.keyColumn);

    const { rows: counted } = await client.query<{ count: string }>(`SELECT count(*) AS count FROM ${table.sql}`);
    const progress = env.progress({ unit: 'rows', total: Number(counted[0].count), initial: state.done });

    const referenced = env.contextTemplate?.references ?? [];
    const select =
      `SELECT ${key}::text AS "key", ${options.columns.map(quote).join(', ')}` +
      referenced.map((name, i) => `, ${quote(name)}::text AS "ref${i}"`).join('') +
      ` FROM ${table.sql}`;
    const firstPage = `${select} ORDER BY ${key} LIMIT $1`;
    const nextPage = `${select} WHERE ${key} > $2::${table.keyType} ORDER BY ${key} LIMIT $1`;

    for (;;) {
      if (env.stopRequested()) {
        progress.finish();
        return interrupted(env, state, source, sourceId, resumed, startedHere);
      }
      const { rows } = await client.query(
        state.after === undefined ? firstPage : nextPage,
        state.after === undefined ? [env.batchSize] : [env.batchSize, state.after],
      );
      if (rows.length === 0) break;
      const batch: Row[] = rows.map((row) => ({
        key: row.key as string,
        values: Object.fromEntries(options.columns.map((column) => [column, row[column]])),
        references: Object.fromEntries(referenced.map((name, i) => [name, row[`ref${i}`] as string | null])),
      }));

      const writes: PendingWrite[] = [];
      const settled: { outcome: ValueOutcome; location: string }[] = [];
      for (const row of batch) {
        for (const column of options.columns) {
          const value = row.values[column];
          if (value === null || value === undefined) continue;
          const location = `${options.keyColumn}=${row.key} column=${column}`;
          const outcome = await reencryptValue(reencryptor, env, row, column, value);
          if (outcome.kind === 'rewritten')
            writes.push({ key: row.key, column, old: value as string | Buffer, outcome });
          else settled.push({ outcome, location });
        }
      }

      if (writes.length) {
        const conflicts = await writeBatch(client, table, options, writes);
        for (const write of writes) {
          const conflict = conflicts.get(`${write.column}\u0000${write.key}`);
          if (conflict === undefined) tally.add(write.outcome, '');
          else tally.changedMeanwhile(conflict.currentKeyId);
        }
      }
      for (const { outcome, location } of settled) tally.add(outcome, location);

      state.after = batch[batch.length - 1].key;
      state.done += batch.length;
      state.tally = tally.data;
      if (!env.dryRun) await env.checkpoints.save(state);
      progress.update(state.done);
    }
    progress.finish();
    const result = await finishJob(env, {
      kind: 'postgres',
      source,
      sourceId,
      startedAt: state.startedAt,
      coveredKeyIds: state.coveredKeyIds,
      tally,
      done: state.done,
      resumed,
      startedHere,
    });
    if (!env.dryRun) await env.checkpoints.remove(sourceId);
    return result;
  } finally {
    await release?.();
  }
}

async function reencryptValue(
  reencryptor: ReturnType<typeof makeReencryptor>,
  env: JobEnvironment,
  row: Row,
  column: string,
  value: unknown,
): Promise<ValueOutcome> {
  if (!env.contextTemplate) return reencryptor.reencrypt(value);
  const rendered = env.contextTemplate.render(column, (name) => row.references[name] ?? undefined);
  if ('missing' in rendered) {
    return {
      kind: 'failed',
      keyId: typeof value === 'string' || Buffer.isBuffer(value) ? ciphertextKeyId(value) : undefined,
      code: 'CONTEXT_MISSING',
      reason: `the context template's {${rendered.missing}} is NULL in this row`,
    };
  }
  return reencryptor.reencrypt(value, rendered.context);
}

/**
 * One statement in one transaction: a compare-and-set per value, so a value is replaced only if it is
 * still the one that was read (`CASE WHEN col = old THEN new ELSE col END`, rows filtered likewise).
 * Re-checked by PostgreSQL against the latest row version when a concurrent update committed first.
 * Returns the values that were not written because the row changed (or went away) meanwhile, with
 * the key of what the row holds now.
 */
async function writeBatch(
  client: Client,
  table: ResolvedTable,
  options: PostgresSourceOptions,
  writes: PendingWrite[],
): Promise<Map<string, { currentKeyId?: string }>> {
  const key = quote(options.keyColumn);
  const columns = options.columns;
  const rows = new Map<string, Map<string, PendingWrite>>();
  for (const write of writes) {
    if (!rows.has(write.key)) rows.set(write.key, new Map());
    rows.get(write.key)!.set(write.column, write);
  }
  const keys = [...rows.keys()];
  const params: unknown[] = [keys];
  for (const column of columns) {
    params.push(keys.map((k) => rows.get(k)!.get(column)?.old ?? null));
    params.push(keys.map((k) => rows.get(k)!.get(column)?.outcome.value ?? null));
  }
  const c = columns.map((column, i) => ({
    col: `t.${quote(column)}`,
    old: `v.o${i}`,
    next: `v.n${i}`,
    type: table.arrayTypes[column],
    i,
  }));
  const sql =
    `UPDATE ${table.sql} AS t SET ` +
    columns
      .map(
        (column, i) =>
          `${quote(column)} = CASE WHEN ${c[i].next} IS NOT NULL AND ${c[i].col} = ${c[i].old} THEN ${c[i].next} ELSE ${c[i].col} END`,
      )
      .join(', ') +
    ` FROM unnest($1::${table.keyType}[], ${c.map(({ type, i }) => `$${2 * i + 2}::${type}, $${2 * i + 3}::${type}`).join(', ')})` +
    ` AS v(key, ${c.map(({ i }) => `o${i}, n${i}`).join(', ')})` +
    ` WHERE t.${key} = v.key AND (${c.map(({ col, old, next }) => `(${next} IS NOT NULL AND ${col} = ${old})`).join(' OR ')})` +
    ` RETURNING t.${key}::text AS key, ` +
    c
      .map(
        ({ col, next, i }) =>
          `(${next} IS NOT NULL AND ${col} = ${next}) AS w${i}, CASE WHEN ${next} IS NOT NULL AND ${col} <> ${next} THEN ${col} END AS c${i}`,
      )
      .join(', ');

  const conflicts = new Map<string, { currentKeyId?: string }>();
  const keyIdOf = (value: unknown) =>
    typeof value === 'string' || Buffer.isBuffer(value) ? ciphertextKeyId(value) : undefined;
  await client.query('BEGIN');
  try {
    const { rows: returned } = await client.query<Record<string, unknown>>(sql, params);
    const seen = new Set<string>();
    for (const row of returned) {
      const k = row.key as string;
      seen.add(k);
      columns.forEach((column, i) => {
        if (rows.get(k)!.has(column) && row[`w${i}`] !== true)
          conflicts.set(`${column}\u0000${k}`, { currentKeyId: keyIdOf(row[`c${i}`]) });
      });
    }
    const untouched = keys.filter((k) => !seen.has(k));
    if (untouched.length) {
      // Every value of these rows changed meanwhile (or the row is gone): read what they hold now.
      const { rows: current } = await client.query<Record<string, unknown>>(
        `SELECT ${key}::text AS key, ${columns.map(quote).join(', ')} FROM ${table.sql} WHERE ${key} = ANY($1::${table.keyType}[])`,
        [untouched],
      );
      const now = new Map(current.map((row) => [row.key as string, row]));
      for (const k of untouched) {
        for (const column of rows.get(k)!.keys())
          conflicts.set(`${column}\u0000${k}`, { currentKeyId: keyIdOf(now.get(k)?.[column]) });
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return conflicts;
}

async function resolveTable(
  client: Client,
  options: PostgresSourceOptions,
  env: JobEnvironment,
): Promise<ResolvedTable> {
  const parts = options.table.split('.');
  if (parts.length > 2 || !parts.every((part) => NAME.test(part))) {
    throw usageError(`--table must be "table" or "schema.table" (letters, digits, _ and $): got "${options.table}"`);
  }
  for (const column of [options.keyColumn, ...options.columns, ...(env.contextTemplate?.references ?? [])]) {
    if (!NAME.test(column)) throw usageError(`"${column}" is not a plain column name (letters, digits, _ and $)`);
  }
  const qualified = parts.map(quote).join('.');
  const { rows: found } = await client.query<{ oid: number; schema: string; name: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name FROM pg_class c ` +
      `JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
    [qualified],
  );
  if (!found.length) throw notFound(`No table ${options.table} in ${redactUrl(options.connectionString)}`);
  const { oid, schema, name } = found[0];
  const { rows: attributes } = await client.query<{
    name: string;
    type: string;
    typname: string;
    category: string;
    attnum: number;
  }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typname, t.typcategory AS category, a.attnum::int AS attnum ` +
      `FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
    [oid],
  );
  const byName = new Map(attributes.map((attribute) => [attribute.name, attribute]));
  const missing = [options.keyColumn, ...options.columns, ...(env.contextTemplate?.references ?? [])].filter(
    (column) => !byName.has(column),
  );
  if (missing.length) throw notFound(`Table ${schema}.${name} has no column ${missing.join(', ')}`);

  const arrayTypes: Record<string, string> = {};
  for (const column of options.columns) {
    const attribute = byName.get(column)!;
    if (attribute.typname === 'bytea') arrayTypes[column] = 'bytea[]';
    else if (attribute.category === 'S') arrayTypes[column] = 'text[]';
    else
      throw usageError(
        `Column ${column} is ${attribute.type}: reencrypt handles text (base64url ciphertexts) and bytea (binary) columns`,
      );
  }
  if (options.columns.includes(options.keyColumn)) throw usageError('--key-column must not be one of --columns');

  const keyAttribute = byName.get(options.keyColumn)!;
  const { rows: unique } = await client.query(
    `SELECT 1 FROM pg_index WHERE indrelid = $1 AND indisunique AND indnkeyatts = 1 AND indkey[0] = $2 AND indpred IS NULL AND indexprs IS NULL`,
    [oid, keyAttribute.attnum],
  );
  if (!unique.length) {
    throw usageError(
      `--key-column ${options.keyColumn} needs a unique index of its own (normally the primary key) to page through ${schema}.${name}`,
    );
  }
  return {
    oid,
    sql: `${quote(schema)}.${quote(name)}`,
    name: `${schema}.${name}`,
    keyType: keyAttribute.type,
    arrayTypes,
  };
}

function interrupted(
  env: JobEnvironment,
  state: PostgresCheckpoint,
  source: string,
  sourceId: string,
  resumed: boolean,
  startedHere: number,
): ReencryptResult {
  return {
    kind: 'postgres',
    source,
    sourceId,
    dryRun: env.dryRun,
    resumed,
    interrupted: true,
    activeKeyId: env.services.keys.activeKey.id,
    done: state.done,
    unit: 'rows',
    durationMs: Math.round(performance.now() - startedHere),
    tally: state.tally,
    unusedKeyIds: [],
  };
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
