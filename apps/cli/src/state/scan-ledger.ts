import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { readJson, writeJsonAtomic } from './state-files.js';

/**
 * What one complete pass over a data source found: how many ciphertexts each key still protects.
 * Kept in the state directory, one file per source, never in the key store (the ring holds keys only).
 */
export interface ScanRecord {
  format: 'nestjs-encryption/scan';
  version: 1;
  /** Human description of the source, without credentials. */
  source: string;
  sourceId: string;
  kind: 'postgres' | 'jsonl';
  startedAt: string;
  finishedAt: string;
  /** A `--dry-run`: the counts describe the source as it was, nothing was rewritten. */
  dryRun: boolean;
  /** The key values were moved to. */
  activeKeyId: string;
  /**
   * Keys that could no longer encrypt when the scan started (neither active nor staged). Only for these
   * does a count of 0 mean "no value uses it": an active key may have been used after its row was read.
   */
  coveredKeyIds: string[];
  /** Ciphertexts seen. */
  values: number;
  /** Key id → ciphertexts in the source that use it after the run. */
  keys: Record<string, number>;
  /** Values that aren't ciphertexts at all (so no key is known for them). */
  unreadable: number;
}

/** Whether any scanned source still needs a key, as `keys list` shows it and `keys destroy` checks it. */
export interface KeyDataUsage {
  /** `unused`: every scanned source was scanned after the key stopped encrypting and none uses it. */
  status: 'in-use' | 'unused' | 'unknown';
  /** Ciphertexts using the key, over the latest scan of every source. */
  values: number;
  sources: { source: string; values: number; scannedAt: string; covered: boolean }[];
  /** Time of the oldest scan the answer rests on. */
  asOf?: string;
  /** One line for people. */
  summary: string;
}

export class ScanLedger {
  private readonly directory: string;

  constructor(stateDir: string) {
    this.directory = join(stateDir, 'scans');
  }

  record(scan: ScanRecord): Promise<void> {
    return writeJsonAtomic(join(this.directory, `${scan.sourceId}.json`), scan);
  }

  /** The latest scan of every source. */
  async all(): Promise<ScanRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const scans = await Promise.all(
      names
        .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
        .map((name) => readJson<ScanRecord>(join(this.directory, name))),
    );
    return scans
      .filter((scan): scan is ScanRecord => scan?.format === 'nestjs-encryption/scan')
      .sort((a, b) => a.source.localeCompare(b.source));
  }
}

export function dataUsageOf(key: { id: string; state: string }, scans: ScanRecord[]): KeyDataUsage {
  const keyId = key.id;
  const sources = scans.map((scan) => ({
    source: scan.source,
    values: scan.keys[keyId] ?? 0,
    scannedAt: scan.finishedAt,
    covered: scan.coveredKeyIds.includes(keyId),
  }));
  const values = sources.reduce((sum, source) => sum + source.values, 0);
  const asOf = sources.map((source) => source.scannedAt).sort()[0];
  const encrypting = key.state === 'active' || key.state === 'staged';
  if (sources.length === 0) {
    return {
      status: encrypting ? 'in-use' : 'unknown',
      values: 0,
      sources,
      summary: encrypting ? `${key.state} key` : 'no source scanned yet',
    };
  }
  if (values > 0) {
    const using = sources.filter((source) => source.values > 0);
    const where =
      using.length === 1
        ? using[0].source
        : using.map((source) => `${source.source} (${source.values.toLocaleString('en-US')})`).join(', ');
    return {
      status: 'in-use',
      values,
      sources,
      asOf,
      summary: `${values.toLocaleString('en-US')} value${values === 1 ? '' : 's'} in ${where}`,
    };
  }
  if (encrypting) return { status: 'in-use', values, sources, asOf, summary: `${key.state} key` };
  const uncovered = sources.filter((source) => !source.covered);
  if (uncovered.length) {
    return {
      status: 'unknown',
      values,
      sources,
      asOf,
      summary: `${uncovered.map((source) => source.source).join(', ')} last scanned while this key could still encrypt`,
    };
  }
  return {
    status: 'unused',
    values,
    sources,
    asOf,
    summary: `no values in ${sources.length} scanned source${sources.length === 1 ? '' : 's'}`,
  };
}
