import type { FileHandle } from 'node:fs/promises';
import { chmod, open, realpath, rename, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { CliError, EXIT, notFound } from '../cli.errors.js';
import type { JsonlCheckpoint } from '../state/checkpoint-store.js';
import { syncDirectory } from '../state/state-files.js';
import type { JobEnvironment, ReencryptResult } from './reencrypt-job.js';
import { finishJob, inactiveKeyIds, makeReencryptor, sourceIdOf } from './reencrypt-job.js';
import { ReencryptTally } from './reencrypt-tally.js';
import type { ValueOutcome, ValueReencryptor } from './value-reencryptor.js';

export interface JsonlSourceOptions {
  input: string;
  /** Where the rewritten file goes. @default the input, replaced atomically */
  output?: string;
  /** Dotted paths of the encrypted fields in each line (`email`, `card.number`, `items.0.secret`). */
  fields: string[];
}

interface Line {
  bytes: Buffer;
  newline: boolean;
}

const CHUNK = 1 << 16;

/**
 * Re-encrypts fields of a JSON Lines file into a temporary file beside the output, fsynced after every
 * batch with a checkpoint (input offset, bytes written), then renamed over the output: readers see the
 * old file or the new one, never a partial one. Lines with nothing to change are copied byte for byte;
 * a changed line keeps everything but the ciphertexts (a value that can't be rewritten that way is
 * reported and left as it was).
 */
export async function reencryptJsonl(options: JsonlSourceOptions, env: JobEnvironment): Promise<ReencryptResult> {
  const startedHere = performance.now();
  let inputPath: string;
  try {
    inputPath = await realpath(resolve(options.input));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`No input file ${options.input}`);
    throw error;
  }
  const outputPath = options.output ? resolve(options.output) : inputPath;
  const fields = options.fields.map((field) => field.split('.'));
  const fieldKey = [...options.fields].sort().join(',');
  const dataPath = env.dryRun ? inputPath : outputPath;
  const source = `${dataPath} (${options.fields.join(', ')})`;
  const sourceId = sourceIdOf(`jsonl|${dataPath}|${fieldKey}`);
  const jobId = sourceIdOf(`jsonl-job|${inputPath}|${outputPath}|${fieldKey}`);
  const tempPath = join(dirname(outputPath), `.${basename(outputPath)}.reencrypt-${jobId.slice(0, 8)}.tmp`);

  let resumed = false;
  const release = env.dryRun ? undefined : await env.checkpoints.lock(jobId);
  try {
    let checkpoint = env.dryRun ? undefined : await env.checkpoints.load<JsonlCheckpoint>(jobId, 'jsonl');
    if (checkpoint && env.restart) {
      await env.checkpoints.remove(jobId);
      checkpoint = undefined;
    }
    resumed = checkpoint !== undefined;

    if (checkpoint?.phase === 'swapping') {
      // Killed while swapping: the temporary file was complete; finish the rename if it didn't happen.
      if (await exists(checkpoint.tempPath)) {
        await rename(checkpoint.tempPath, checkpoint.outputPath);
        await syncDirectory(dirname(checkpoint.outputPath));
      }
      return await complete(checkpoint, new ReencryptTally(checkpoint.tally));
    }

    const inputStat = await stat(inputPath);
    if (checkpoint) {
      if (checkpoint.input.size !== inputStat.size || checkpoint.input.mtimeMs !== inputStat.mtimeMs) {
        throw new CliError(
          EXIT.FAILED,
          'INPUT_CHANGED',
          `${options.input} changed since the interrupted run; run again with --restart`,
        );
      }
      if (!(await exists(checkpoint.tempPath))) {
        throw new CliError(
          EXIT.FAILED,
          'CHECKPOINT_ORPHANED',
          `The partial output ${checkpoint.tempPath} is gone; run again with --restart`,
        );
      }
      env.notice(`Resuming at line ${checkpoint.done + 1} (started ${checkpoint.startedAt})`);
    }
    const state: JsonlCheckpoint = checkpoint ?? {
      format: 'nestjs-encryption/reencrypt-checkpoint',
      version: 1,
      kind: 'jsonl',
      sourceId: jobId,
      source,
      startedAt: new Date().toISOString(),
      coveredKeyIds: inactiveKeyIds(env.services),
      done: 0,
      tally: new ReencryptTally().data,
      input: { path: inputPath, size: inputStat.size, mtimeMs: inputStat.mtimeMs },
      outputPath,
      tempPath,
      inputOffset: 0,
      bytesWritten: 0,
      phase: 'running',
    };
    const tally = new ReencryptTally(state.tally);
    const reencryptor = makeReencryptor(env);
    const progress = env.progress({ unit: 'lines', total: await countLines(inputPath), initial: state.done });

    let output: FileHandle | undefined;
    if (!env.dryRun) {
      output = await open(tempPath, checkpoint ? 'r+' : 'w', 0o600);
      await output.truncate(state.bytesWritten); // drop whatever was written after the last checkpoint
    }
    try {
      let batch: { line: Line; end: number }[] = [];
      const flush = async () => {
        const parts: Buffer[] = [];
        for (const { line } of batch) {
          state.done++;
          const rewritten = await rewriteLine(line.bytes, state.done, fields, options.fields, reencryptor, env, tally);
          parts.push(rewritten);
          if (line.newline) parts.push(NEWLINE);
        }
        if (output) {
          const bytes = Buffer.concat(parts);
          await output.write(bytes, 0, bytes.length, state.bytesWritten);
          await output.sync();
          state.bytesWritten += bytes.length;
        }
        state.inputOffset = batch[batch.length - 1].end;
        state.tally = tally.data;
        if (!env.dryRun) await env.checkpoints.save(state);
        progress.update(state.done);
        batch = [];
      };
      for await (const entry of readLines(inputPath, state.inputOffset)) {
        batch.push(entry);
        if (batch.length >= env.batchSize) {
          await flush();
          if (env.stopRequested()) {
            progress.finish();
            return interrupted(state);
          }
        }
      }
      if (batch.length) await flush();
      progress.finish();
      if (output) {
        await output.sync();
        await output.close();
        output = undefined;
        await chmod(tempPath, inputStat.mode & 0o777);
        state.phase = 'swapping';
        await env.checkpoints.save(state);
        await rename(tempPath, outputPath);
        await syncDirectory(dirname(outputPath));
      }
      return await complete(state, tally);
    } finally {
      await output?.close();
    }
  } finally {
    await release?.();
  }

  async function complete(state: JsonlCheckpoint, tally: ReencryptTally): Promise<ReencryptResult> {
    const result = await finishJob(env, {
      kind: 'jsonl',
      source,
      sourceId,
      startedAt: state.startedAt,
      coveredKeyIds: state.coveredKeyIds,
      tally,
      done: state.done,
      resumed,
      startedHere,
      output: env.dryRun ? undefined : state.outputPath,
    });
    if (!env.dryRun) await env.checkpoints.remove(jobId);
    return result;
  }

  function interrupted(state: JsonlCheckpoint): ReencryptResult {
    return {
      kind: 'jsonl',
      source,
      sourceId,
      dryRun: env.dryRun,
      resumed,
      interrupted: true,
      activeKeyId: env.services.keys.activeKey.id,
      done: state.done,
      unit: 'lines',
      durationMs: Math.round(performance.now() - startedHere),
      tally: state.tally,
      unusedKeyIds: [],
    };
  }
}

const NEWLINE = Buffer.from('\n');

interface Rewrite {
  path: string[];
  old: string;
  outcome: Extract<ValueOutcome, { kind: 'rewritten' }>;
  location: string;
}

/** The output bytes of one line (without its newline), tallying each field's outcome. */
async function rewriteLine(
  bytes: Buffer,
  lineNumber: number,
  fields: string[][],
  fieldNames: string[],
  reencryptor: ValueReencryptor,
  env: JobEnvironment,
  tally: ReencryptTally,
): Promise<Buffer> {
  let text = bytes.toString('utf8');
  const carriageReturn = text.endsWith('\r');
  if (carriageReturn) text = text.slice(0, -1);
  if (text.trim() === '') return bytes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    tally.add({ kind: 'failed', code: 'NOT_JSON', reason: 'the line is not a JSON object' }, `line ${lineNumber}`);
    return bytes;
  }
  const rewrites: Rewrite[] = [];
  for (const [i, path] of fields.entries()) {
    const value = getPath(parsed, path);
    if (value === undefined || value === null) continue;
    const location = `line ${lineNumber} field ${fieldNames[i]}`;
    let outcome: ValueOutcome;
    if (env.contextTemplate) {
      const rendered = env.contextTemplate.render(fieldNames[i], (name) =>
        scalarText(getPath(parsed, name.split('.'))),
      );
      outcome =
        'missing' in rendered
          ? {
              kind: 'failed',
              code: 'CONTEXT_MISSING',
              reason: `the context template's {${rendered.missing}} is missing from this line`,
            }
          : await reencryptor.reencrypt(value, rendered.context);
    } else {
      outcome = await reencryptor.reencrypt(value);
    }
    if (outcome.kind === 'rewritten') rewrites.push({ path, old: value as string, outcome, location });
    else tally.add(outcome, location);
  }
  if (!rewrites.length) return bytes;

  const expected = structuredClone(parsed);
  for (const rewrite of rewrites) setPath(expected, rewrite.path, rewrite.outcome.value);
  const replaced =
    replaceInPlace(text, rewrites, expected) ??
    (JSON.stringify(parsed) === text ? JSON.stringify(expected) : undefined);
  if (replaced === undefined) {
    for (const rewrite of rewrites) {
      tally.add(
        {
          kind: 'failed',
          keyId: rewrite.outcome.fromKeyId,
          code: 'LINE_NOT_REWRITABLE',
          reason: 'the line could not be rewritten without changing other content; left as it was',
        },
        rewrite.location,
      );
    }
    return bytes;
  }
  for (const rewrite of rewrites) tally.add(rewrite.outcome, rewrite.location);
  return Buffer.from(carriageReturn ? `${replaced}\r` : replaced, 'utf8');
}

/**
 * Swaps each old ciphertext's JSON string for the new one in the original text, so numbers, spacing
 * and escapes elsewhere stay exactly as they were; checked by parsing the result.
 */
function replaceInPlace(text: string, rewrites: Rewrite[], expected: unknown): string | undefined {
  let result = text;
  for (const rewrite of rewrites) {
    const needle = JSON.stringify(rewrite.old);
    const at = result.indexOf(needle);
    if (at < 0 || result.indexOf(needle, at + 1) >= 0) return undefined;
    result = result.slice(0, at) + JSON.stringify(rewrite.outcome.value) + result.slice(at + needle.length);
  }
  try {
    return JSON.stringify(JSON.parse(result)) === JSON.stringify(expected) ? result : undefined;
  } catch {
    return undefined;
  }
}

function getPath(value: unknown, path: string[]): unknown {
  let current = value;
  for (const part of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function setPath(value: unknown, path: string[], next: unknown): void {
  let current = value as Record<string, unknown>;
  for (const part of path.slice(0, -1)) current = current[part] as Record<string, unknown>;
  current[path[path.length - 1]] = next;
}

function scalarText(value: unknown): string | undefined {
  return typeof value === 'string'
    ? value
    : typeof value === 'number' || typeof value === 'boolean'
      ? String(value)
      : undefined;
}

/** Lines from byte `start`, each with the offset just after it (so a checkpoint can resume there). */
async function* readLines(path: string, start: number): AsyncGenerator<{ line: Line; end: number }> {
  const handle = await open(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let position = start;
    let carry = Buffer.alloc(0);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
      if (bytesRead === 0) {
        if (carry.length) yield { line: { bytes: carry, newline: false }, end: position };
        return;
      }
      position += bytesRead;
      const data = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let from = 0;
      for (let at = data.indexOf(10, from); at >= 0; at = data.indexOf(10, from)) {
        yield { line: { bytes: data.subarray(from, at), newline: true }, end: position - (data.length - at - 1) };
        from = at + 1;
      }
      carry = data.subarray(from);
    }
  } finally {
    await handle.close();
  }
}

async function countLines(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let lines = 0;
    let last = 10;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, null);
      if (bytesRead === 0) break;
      for (let at = chunk.indexOf(10); at >= 0 && at < bytesRead; at = chunk.indexOf(10, at + 1)) lines++;
      last = chunk[bytesRead - 1];
    }
    return last === 10 ? lines : lines + 1;
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
