import { EXIT, usageError } from '../cli.errors.js';
import type { CommandDefinition } from '../cli-command.js';
import { ProgressReporter } from '../output/progress.js';
import type { Style } from '../output/terminal.js';
import { formatCount, formatDuration } from '../output/terminal.js';
import { ContextTemplate } from '../reencrypt/context-template.js';
import type { JobEnvironment, ReencryptResult } from '../reencrypt/reencrypt-job.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { ScanLedger } from '../state/scan-ledger.js';

/** Exit status of a run stopped by SIGINT/SIGTERM after a committed batch (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

export const reencryptCommand: CommandDefinition = {
  name: 'reencrypt',
  summary: 'Move stored ciphertexts to the active key (JSON Lines file or PostgreSQL table)',
  description: `Decrypts each ciphertext with whichever retained key made it and encrypts it again with the active
key. Values already on the active key are left alone; a value that fails to decrypt is reported
(with the reason) and left exactly as it was.

JSON Lines: --input <file> --fields a,b.c [--output <file>]
  Writes a temporary file beside the output, fsynced with each batch, and renames it over the output
  (by default the input itself) at the end: readers see the old file or the new one. Lines with
  nothing to change are copied byte for byte.

PostgreSQL: --table [schema.]table --columns a,b --key-column id [--connection <url>]
  Batches follow --key-column (which needs a unique index, normally the primary key). Each batch is
  written in one transaction with a compare-and-set per value (... WHERE id = $1 AND col = <old>):
  a value the application changes during the job is never overwritten ("changed meanwhile").
  Columns may be text (base64url ciphertexts) or bytea (binary). --connection defaults to DATABASE_URL.

--context-template: when values were encrypted with a context, how to rebuild it per value.
  A JSON object of strings gives an object context, anything else a string context. {column} (or
  {field}) is the column or field being re-encrypted; {name} is that column of the row (or dotted
  field of the line). Example: '{"record":"{id}","field":"{column}"}'

Resumable: a checkpoint is written after every committed batch in <state-dir>/checkpoints/. After a
crash or kill, run the same command again to continue where it stopped (--restart starts over).
On a terminal a progress bar shows count, rate and ETA; otherwise a progress line is written to
stderr every --progress-interval seconds. A summary follows: rewritten, already current, changed
meanwhile, failed with reasons. Each complete run (and --dry-run) records which keys the source still
uses in <state-dir>/scans/, which \`keys list\` shows and \`keys destroy\` checks.

Exit status: 0 when every value is on the active key or was changed meanwhile by the application,
2 when some values failed (see the summary), 130 when stopped by SIGINT/SIGTERM (resume by running
the same command again).`,
  options: {
    input: { type: 'string', placeholder: 'file', description: 'JSON Lines file to re-encrypt' },
    fields: { type: 'string', placeholder: 'a,b.c', description: 'encrypted fields of each line (dotted paths)' },
    output: { type: 'string', placeholder: 'file', description: 'write the result here instead of replacing --input' },
    table: { type: 'string', placeholder: '[schema.]table', description: 'PostgreSQL table to re-encrypt' },
    columns: { type: 'string', placeholder: 'a,b', description: 'encrypted columns (text or bytea)' },
    'key-column': { type: 'string', placeholder: 'column', description: 'unique key column to page by (default id)' },
    connection: {
      type: 'string',
      placeholder: 'url',
      description: 'PostgreSQL connection string (default DATABASE_URL)',
    },
    'context-template': {
      type: 'string',
      placeholder: 'template',
      description: "rebuild each value's encryption context (see above)",
    },
    'batch-size': {
      type: 'string',
      placeholder: 'n',
      description: 'rows or lines per batch and checkpoint (default 1000)',
    },
    'dry-run': { type: 'boolean', description: 'count what would change; write nothing (records a scan)' },
    restart: { type: 'boolean', description: 'ignore a checkpoint of an interrupted run and start over' },
    'progress-interval': {
      type: 'string',
      placeholder: 'seconds',
      description: 'seconds between progress lines when not on a terminal (default 5)',
    },
  },
  usesKeyStore: true,
  examples: [
    'nestjs-encryption reencrypt --input exports/customers.jsonl --fields email,card.number',
    'nestjs-encryption reencrypt --table public.customers --columns email,phone --key-column id',
    'nestjs-encryption reencrypt --table customers --columns email --dry-run --json',
  ],
  async run(context) {
    const { values, io } = context;
    const list = (name: string) =>
      typeof values[name] === 'string'
        ? (values[name] as string)
            .split(',')
            .map((item) => item.trim())
            .filter(Boolean)
        : [];
    const isFile = values.input !== undefined;
    const isTable = values.table !== undefined;
    if (isFile === isTable) throw usageError('Give either --input (JSON Lines) or --table (PostgreSQL)');
    const fields = list('fields');
    const columns = list('columns');
    if (isFile && !fields.length) throw usageError('--input needs --fields');
    if (isTable && !columns.length) throw usageError('--table needs --columns');
    for (const [name, allowed] of [
      ['fields', isFile],
      ['output', isFile],
      ['columns', isTable],
      ['key-column', isTable],
      ['connection', isTable],
    ] as const) {
      if (values[name] !== undefined && !allowed)
        throw usageError(`--${name} only applies to ${isFile ? '--table' : '--input'}`);
    }
    const batchSize = positiveInteger(values['batch-size'], 1000, '--batch-size');
    const intervalSeconds = number(values['progress-interval'], 5, '--progress-interval');
    const connection = (values.connection as string | undefined) ?? io.env.DATABASE_URL;
    if (isTable && !connection) throw usageError('--table needs --connection or DATABASE_URL');
    const contextTemplate =
      typeof values['context-template'] === 'string' ? ContextTemplate.parse(values['context-template']) : undefined;

    let stop = false;
    const onSignal = () => {
      if (stop) process.exit(EXIT_INTERRUPTED);
      stop = true;
      if (!context.json) io.stderr.write('\nStopping after the current batch (again to quit now)...\n');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      return await context.withServices(async (services) => {
        let reporter: ProgressReporter | undefined;
        const env: JobEnvironment = {
          services,
          checkpoints: new CheckpointStore(context.stateDir),
          ledger: new ScanLedger(context.stateDir),
          dryRun: values['dry-run'] === true,
          restart: values.restart === true,
          batchSize,
          contextTemplate,
          progress: (options) =>
            (reporter = new ProgressReporter(io.stderr, {
              ...options,
              tty: io.stderr.isTTY === true,
              json: context.json,
              intervalMs: intervalSeconds * 1000,
            })),
          stopRequested: () => stop,
          notice: (text) => {
            reporter?.clear();
            context.notice(text);
          },
        };
        const { reencryptJsonl } = await import('../reencrypt/jsonl-reencrypt.job.js');
        const { reencryptPostgres } = await import('../reencrypt/postgres-reencrypt.job.js');
        const result = isFile
          ? await reencryptJsonl(
              { input: values.input as string, output: values.output as string | undefined, fields },
              env,
            )
          : await reencryptPostgres(
              {
                connectionString: connection!,
                table: values.table as string,
                columns,
                keyColumn: (values['key-column'] as string) ?? 'id',
              },
              env,
            );
        if (context.json) context.printJson(resultJson(result));
        else context.print(renderSummary(result, context.style));
        if (result.interrupted) return EXIT_INTERRUPTED;
        return result.tally.failed > 0 ? EXIT.FAILED : EXIT.OK;
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

function resultJson(result: ReencryptResult) {
  const { tally } = result;
  return {
    source: result.source,
    kind: result.kind,
    dryRun: result.dryRun,
    resumed: result.resumed,
    interrupted: result.interrupted,
    activeKeyId: result.activeKeyId,
    [result.unit]: result.done,
    values: tally.values,
    rewritten: tally.rewritten,
    alreadyCurrent: tally.alreadyCurrent,
    wouldRewrite: tally.stale,
    changedMeanwhile: tally.changedMeanwhile,
    failed: tally.failed,
    failuresByCode: tally.failuresByCode,
    failures: tally.failures,
    keys: tally.keys,
    unusedKeyIds: result.unusedKeyIds,
    output: result.output,
    durationMs: result.durationMs,
  };
}

function renderSummary(result: ReencryptResult, style: Style): string {
  const { tally } = result;
  const line = (label: string, value: number, note = '') =>
    `  ${label.padEnd(18)}${formatCount(value).padStart(12)}${note ? `  ${note}` : ''}\n`;
  let text = result.interrupted
    ? style.yellow(
        `Stopped after ${formatCount(result.done)} ${result.unit}; run the same command again to continue.\n`,
      )
    : `${result.dryRun ? 'Dry run of' : 'Re-encrypted'} ${result.source} to key ${style.bold(result.activeKeyId)}${result.resumed ? ' (resumed)' : ''}\n`;
  text += line(result.unit, result.done);
  text += line('values', tally.values);
  if (result.dryRun) text += line('would rewrite', tally.stale);
  else text += line('rewritten', tally.rewritten);
  text += line('already current', tally.alreadyCurrent);
  if (tally.changedMeanwhile)
    text += line(
      'changed meanwhile',
      tally.changedMeanwhile,
      style.dim('written by the application during the job; left as they are'),
    );
  text += line('failed', tally.failed, tally.failed ? style.red('left as they were') : '');
  for (const failure of tally.failures)
    text += `    ${failure.location}: ${style.red(failure.code)} ${failure.reason}\n`;
  if (tally.failed > tally.failures.length)
    text += `    ... and ${formatCount(tally.failed - tally.failures.length)} more\n`;
  const keys = Object.entries(tally.keys).sort((a, b) => b[1] - a[1]);
  if (keys.length)
    text += `  keys in use:      ${keys.map(([id, count]) => `${id} (${formatCount(count)})`).join(', ')}\n`;
  if (result.unusedKeyIds.length && !result.interrupted) {
    text +=
      style.green(`  no value here uses: ${result.unusedKeyIds.join(', ')}`) +
      style.dim('  (see keys list for every scanned source)') +
      '\n';
  }
  if (result.output) text += `  output:           ${result.output}\n`;
  text += `  took ${formatDuration(result.durationMs)}\n`;
  return text;
}

function positiveInteger(value: string | boolean | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1)
    throw usageError(`${name} must be a positive whole number`);
  return Number(value);
}

function number(value: string | boolean | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(parsed) || parsed < 0)
    throw usageError(`${name} must be a number of seconds`);
  return parsed;
}
