import type { KeyStore, StoredKeyRing } from '../interfaces/key-store.interface.js';

/** Keeps the (wrapped) key ring in process memory: the default until a persistent store is configured. */
export class InMemoryKeyStore implements KeyStore {
  private ring?: StoredKeyRing;

  async load(): Promise<StoredKeyRing | undefined> {
    return this.ring && structuredClone(this.ring);
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    if ((this.ring?.revision ?? 0) !== expectedRevision) return false;
    this.ring = structuredClone(ring);
    return true;
  }
}
