import { unlink } from 'node:fs/promises';
import { join } from 'node:path';

import type { TallyData } from '../reencrypt/reencrypt-tally.js';
import { acquireJobLock, readJson, writeJsonAtomic } from './state-files.js';

interface CheckpointCommon {
  format: 'nestjs-encryption/reencrypt-checkpoint';
  version: 1;
  sourceId: string;
  source: string;
  startedAt: string;
  /** Keys that could no longer encrypt when the job first started (see `ScanRecord.coveredKeyIds`). */
  coveredKeyIds: string[];
  /** Rows or lines done. */
  done: number;
  tally: TallyData;
}

export interface PostgresCheckpoint extends CheckpointCommon {
  kind: 'postgres';
  /** Primary key (as text) of the last row of the last committed batch. */
  after?: string;
}

export interface JsonlCheckpoint extends CheckpointCommon {
  kind: 'jsonl';
  input: { path: string; size: number; mtimeMs: number };
  outputPath: string;
  tempPath: string;
  /** Bytes of the input consumed, and of the temporary output written and fsynced, up to the last complete batch. */
  inputOffset: number;
  bytesWritten: number;
  /** `swapping`: the temporary file is complete and is being (or was) renamed over the output. */
  phase: 'running' | 'swapping';
}

export type Checkpoint = PostgresCheckpoint | JsonlCheckpoint;

/**
 * Checkpoints of re-encryption jobs, one file per source in `<state-dir>/checkpoints/`, each written
 * atomically after every committed batch, plus a lock file so one source has one job at a time.
 */
export class CheckpointStore {
  private readonly directory: string;

  constructor(stateDir: string) {
    this.directory = join(stateDir, 'checkpoints');
  }

  path(sourceId: string): string {
    return join(this.directory, `${sourceId}.json`);
  }

  async load<T extends Checkpoint>(sourceId: string, kind: T['kind']): Promise<T | undefined> {
    const checkpoint = await readJson<Checkpoint>(this.path(sourceId));
    return checkpoint?.format === 'nestjs-encryption/reencrypt-checkpoint' && checkpoint.kind === kind
      ? (checkpoint as T)
      : undefined;
  }

  save(checkpoint: Checkpoint): Promise<void> {
    return writeJsonAtomic(this.path(checkpoint.sourceId), checkpoint);
  }

  async remove(sourceId: string): Promise<void> {
    await unlink(this.path(sourceId)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  lock(sourceId: string): Promise<() => Promise<void>> {
    return acquireJobLock(join(this.directory, `${sourceId}.lock`));
  }
}
