import { EventEmitter } from 'node:events';

import type { EncryptionClock } from '../interfaces/encryption-module-options.interface.js';
import type {
  InstanceHeartbeat,
  KeyStore,
  KeyUsageDelta,
  StoredKeyRing,
  StoredKeyUsage,
} from '../interfaces/key-store.interface.js';
import { assertSaveable, mergeUsageDeltas, notify } from './key-store.utils.js';

export interface InMemoryKeyStoreOptions {
  /** Time source for heartbeat expiry. @default the system clock (`Date.now()`) */
  clock?: EncryptionClock;
}

const CHANGED = 'changed';

/**
 * Keeps the (wrapped) key ring in process memory: the default until a persistent store is configured.
 * Several `KeyManagerService`s sharing one instance coordinate through it like instances sharing a
 * database: compare-and-set saves, `watch`, heartbeats and usage totals. Everything is deep-copied in
 * and out, so no caller can change the stored ring by mutating an object it holds.
 */
export class InMemoryKeyStore implements KeyStore {
  private ring?: StoredKeyRing;
  private readonly beats = new Map<string, { beat: InstanceHeartbeat; expiresAt: number }>();
  private readonly usage = new Map<string, StoredKeyUsage>();
  private readonly changes = new EventEmitter().setMaxListeners(0);
  private readonly clock: EncryptionClock;

  constructor(options: InMemoryKeyStoreOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  async load(): Promise<StoredKeyRing | undefined> {
    return this.ring && structuredClone(this.ring);
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    assertSaveable(ring, expectedRevision);
    if ((this.ring?.revision ?? 0) !== expectedRevision) return false;
    this.ring = structuredClone(ring);
    const { revision } = ring;
    // Watchers run after the saver resumes, like a notification arriving from another process.
    queueMicrotask(() => this.changes.emit(CHANGED, revision));
    return true;
  }

  async watch(onChange: (revision: number) => void): Promise<() => Promise<void>> {
    const listener = (revision: number) => notify(onChange, revision);
    this.changes.on(CHANGED, listener);
    return async () => {
      this.changes.off(CHANGED, listener);
    };
  }

  async heartbeat(beat: InstanceHeartbeat, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    this.beats.set(beat.instanceId, { beat: structuredClone(beat), expiresAt: now + ttlMs });
    for (const [id, entry] of this.beats) if (entry.expiresAt <= now) this.beats.delete(id);
  }

  async instances(): Promise<InstanceHeartbeat[]> {
    const now = this.clock.now();
    return [...this.beats.values()]
      .filter((entry) => entry.expiresAt > now)
      .map((entry) => structuredClone(entry.beat));
  }

  async addUsage(deltas: KeyUsageDelta[]): Promise<void> {
    for (const [keyId, delta] of mergeUsageDeltas(deltas)) {
      const total = this.usage.get(keyId) ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 };
      this.usage.set(keyId, {
        encryptions: total.encryptions + delta.encryptions,
        decryptions: total.decryptions + delta.decryptions,
        lastUsedAt: Math.max(total.lastUsedAt, delta.lastUsedAt),
      });
    }
  }

  async loadUsage(): Promise<Record<string, StoredKeyUsage>> {
    return Object.fromEntries([...this.usage].map(([keyId, total]) => [keyId, { ...total }]));
  }

  async ping(): Promise<void> {}

  /** Nothing to release; the ring stays, since other holders of this instance may still use it. */
  async close(): Promise<void> {}
}
