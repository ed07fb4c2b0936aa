import type { KeyMetadata } from 'nestjs-encryption';

import { notFound } from '../cli.errors.js';
import type { Style } from '../output/terminal.js';
import { ago, formatCount, formatDuration } from '../output/terminal.js';
import type { KeyDataUsage } from '../state/scan-ledger.js';

/** A key as `--json` prints it: metadata and usage counts, never key bytes. */
export interface KeyJson {
  id: string;
  version: number;
  state: string;
  createdAt: string;
  ageMs: number;
  encryptions: number;
  decryptions: number;
  lastUsedAt: string | null;
  data?: KeyDataUsage;
}

export function keyJson(key: KeyMetadata, data?: KeyDataUsage): KeyJson {
  return {
    id: key.id,
    version: key.version,
    state: key.state,
    createdAt: key.createdAt.toISOString(),
    ageMs: key.ageMs,
    encryptions: key.encryptions,
    decryptions: key.decryptions,
    lastUsedAt: key.lastUsedAt ? key.lastUsedAt.toISOString() : null,
    ...(data ? { data } : {}),
  };
}

export function styledState(state: string, style: Style): string {
  switch (state) {
    case 'active':
      return style.green(state);
    case 'staged':
      return style.cyan(state);
    case 'retired':
      return style.yellow(state);
    case 'destroyed':
      return style.red(state);
    default:
      return state;
  }
}

export function keyLine(key: KeyMetadata, style: Style): string {
  return `${style.bold(key.id)} (version ${key.version}, ${styledState(key.state, style)}, created ${formatDuration(key.ageMs)} ago)`;
}

export function keyRow(key: KeyMetadata, data: KeyDataUsage | undefined, style: Style): string[] {
  return [
    key.id,
    String(key.version),
    styledState(key.state, style),
    formatDuration(key.ageMs),
    formatCount(key.encryptions),
    formatCount(key.decryptions),
    key.lastUsedAt ? ago(key.lastUsedAt) : style.dim('never'),
    data ? dataCell(data, style) : '',
  ];
}

function dataCell(data: KeyDataUsage, style: Style): string {
  const asOf = data.asOf ? ` (${ago(data.asOf)})` : '';
  if (data.status === 'in-use') return `${data.summary}${asOf}`;
  if (data.status === 'unused') return style.green(`${data.summary}${asOf}`);
  return style.dim(data.summary);
}

export function findKey(keys: KeyMetadata[], id: string, location: string): KeyMetadata {
  const key = keys.find((candidate) => candidate.id === id);
  if (!key) throw notFound(`No key with id ${id} in the key ring (${location})`);
  return key;
}
