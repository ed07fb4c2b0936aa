import type { KeyUsage } from './crypto/key-ring.js';
import type { KeyUsageDelta, StoredKeyUsage } from './interfaces/key-store.interface.js';

/**
 * Counts usage in memory on the hot path (plain increments on the key) and hands the store deltas in
 * batches. A failed flush keeps its deltas for the next attempt, so no count is lost.
 */
export class KeyUsageTracker {
  /** Totals already in the store when they were last read, by key id. */
  private stored = new Map<string, StoredKeyUsage>();
  /** What was already handed to the store, by key id, so the next delta excludes it. */
  private flushed = new Map<string, StoredKeyUsage>();

  setStoredTotals(totals: Record<string, StoredKeyUsage>): void {
    this.stored = new Map(Object.entries(totals));
  }

  /** Local counters plus what other instances (or earlier runs) stored. */
  totals(keyId: string, local: KeyUsage): StoredKeyUsage {
    const stored = this.stored.get(keyId);
    const flushed = this.flushed.get(keyId);
    return {
      encryptions: (stored?.encryptions ?? 0) + local.encryptions - (flushed?.encryptions ?? 0),
      decryptions: (stored?.decryptions ?? 0) + local.decryptions - (flushed?.decryptions ?? 0),
      lastUsedAt: Math.max(stored?.lastUsedAt ?? 0, local.lastUsedAt),
    };
  }

  /** Deltas since the last successful flush; call `markFlushed` with them once the store took them. */
  pending(keys: Iterable<{ id: string; usage: KeyUsage }>): KeyUsageDelta[] {
    const deltas: KeyUsageDelta[] = [];
    for (const { id, usage } of keys) {
      const done = this.flushed.get(id);
      const encryptions = usage.encryptions - (done?.encryptions ?? 0);
      const decryptions = usage.decryptions - (done?.decryptions ?? 0);
      if (encryptions || decryptions) deltas.push({ keyId: id, encryptions, decryptions, lastUsedAt: usage.lastUsedAt });
    }
    return deltas;
  }

  markFlushed(deltas: KeyUsageDelta[]): void {
    for (const delta of deltas) {
      const done = this.flushed.get(delta.keyId) ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 };
      const stored = this.stored.get(delta.keyId) ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 };
      this.flushed.set(delta.keyId, {
        encryptions: done.encryptions + delta.encryptions,
        decryptions: done.decryptions + delta.decryptions,
        lastUsedAt: delta.lastUsedAt,
      });
      this.stored.set(delta.keyId, {
        encryptions: stored.encryptions + delta.encryptions,
        decryptions: stored.decryptions + delta.decryptions,
        lastUsedAt: Math.max(stored.lastUsedAt, delta.lastUsedAt),
      });
    }
  }
}
