import { createHash } from 'node:crypto';

import type { EncryptionServices } from '../config/encryption-context.js';
import type { ProgressReporter } from '../output/progress.js';
import type { CheckpointStore } from '../state/checkpoint-store.js';
import type { ScanLedger, ScanRecord } from '../state/scan-ledger.js';
import type { ContextTemplate } from './context-template.js';
import type { ReencryptTally, TallyData } from './reencrypt-tally.js';
import { ValueReencryptor } from './value-reencryptor.js';

/** What a re-encryption job needs from the command around it. */
export interface JobEnvironment {
  services: EncryptionServices;
  checkpoints: CheckpointStore;
  ledger: ScanLedger;
  dryRun: boolean;
  /** Discard a checkpoint instead of resuming from it. */
  restart: boolean;
  batchSize: number;
  contextTemplate?: ContextTemplate;
  progress(options: { unit: string; total?: number; initial: number }): ProgressReporter;
  /** SIGINT/SIGTERM: stop after the batch in flight is committed and checkpointed. */
  stopRequested(): boolean;
  /** Informational line on stderr. */
  notice(text: string): void;
}

export interface ReencryptResult {
  kind: 'postgres' | 'jsonl';
  source: string;
  sourceId: string;
  dryRun: boolean;
  /** Continued from a checkpoint left by an interrupted run. */
  resumed: boolean;
  /** Stopped on a signal after a committed batch; run the same command again to continue. */
  interrupted: boolean;
  activeKeyId: string;
  /** Rows or lines processed over the whole job (all runs). */
  done: number;
  unit: 'rows' | 'lines';
  durationMs: number;
  tally: TallyData;
  /** Keys that could no longer encrypt when the job started and that no value of this source uses now. */
  unusedKeyIds: string[];
  /** JSON Lines: where the rewritten file is. */
  output?: string;
}

export function sourceIdOf(canonical: string): string {
  return createHash('sha256').update(canonical).digest('hex').slice(0, 20);
}

/** Keys that can't make new ciphertexts any more: only for these can a scan prove "no value uses it". */
export function inactiveKeyIds(services: EncryptionServices): string[] {
  return services.keys
    .listKeys()
    .filter((key) => key.state !== 'active' && key.state !== 'staged')
    .map((key) => key.id);
}

export function makeReencryptor(env: JobEnvironment): ValueReencryptor {
  return new ValueReencryptor(env.services.encryption, env.services.keys, env.dryRun);
}

/** Records a finished job in the scan ledger and builds its result. */
export async function finishJob(
  env: JobEnvironment,
  job: {
    kind: 'postgres' | 'jsonl';
    source: string;
    sourceId: string;
    startedAt: string;
    coveredKeyIds: string[];
    tally: ReencryptTally;
    done: number;
    resumed: boolean;
    startedHere: number;
    output?: string;
  },
): Promise<ReencryptResult> {
  const activeKeyId = env.services.keys.activeKey.id;
  const { data } = job.tally;
  const scan: ScanRecord = {
    format: 'nestjs-encryption/scan',
    version: 1,
    source: job.source,
    sourceId: job.sourceId,
    kind: job.kind,
    startedAt: job.startedAt,
    finishedAt: new Date().toISOString(),
    dryRun: env.dryRun,
    activeKeyId,
    coveredKeyIds: job.coveredKeyIds,
    values: data.values,
    keys: data.keys,
    unreadable: data.unreadable,
  };
  await env.ledger.record(scan);
  return {
    kind: job.kind,
    source: job.source,
    sourceId: job.sourceId,
    dryRun: env.dryRun,
    resumed: job.resumed,
    interrupted: false,
    activeKeyId,
    done: job.done,
    unit: job.kind === 'postgres' ? 'rows' : 'lines',
    durationMs: Math.round(performance.now() - job.startedHere),
    tally: data,
    unusedKeyIds: job.coveredKeyIds.filter((id) => !data.keys[id]),
    output: job.output,
  };
}
