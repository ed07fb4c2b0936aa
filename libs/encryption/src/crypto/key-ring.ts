import type { KeyState } from '../interfaces/key-store.interface.js';
import type { DataKey } from './data-key.js';

/** Per-key counters; kept on the key so a lookup already has them, no second map. */
export interface KeyUsage {
  encryptions: number;
  decryptions: number;
  /** Epoch milliseconds of the last encryption or decryption, 0 when never used. */
  lastUsedAt: number;
}

export interface ManagedKey {
  readonly id: string;
  readonly version: number;
  readonly createdAt: Date;
  readonly state: KeyState;
  /** Present while the key may be used (staged, active, decrypt-only); absent once retired or destroyed. */
  readonly dataKey?: DataKey;
  readonly usage: KeyUsage;
}

/** The active key always has its key bytes. */
export type ActiveKey = ManagedKey & { readonly dataKey: DataKey };

/**
 * An immutable snapshot of the loaded keys: exactly one active key plus previous keys, indexed by id
 * so decryption finds its key in O(1) however many are retained. Rotation builds a new snapshot and
 * swaps it in one assignment, so a reader never sees a ring without an active key.
 */
export class KeyRing {
  private readonly byId: ReadonlyMap<string, ManagedKey>;
  readonly active: ActiveKey;

  constructor(keys: readonly ManagedKey[]) {
    this.byId = new Map(keys.map((key) => [key.id, key]));
    const active = keys.filter((key) => key.state === 'active');
    if (active.length !== 1 || !active[0].dataKey || this.byId.size !== keys.length) {
      throw new Error(`A key ring needs exactly one usable active key and unique ids (got ${active.length} active)`);
    }
    this.active = active[0] as ActiveKey;
  }

  find(id: string): ManagedKey | undefined {
    return this.byId.get(id);
  }

  /** Newest first. */
  all(): ManagedKey[] {
    return [...this.byId.values()].sort((a, b) => b.version - a.version);
  }
}
