/** Lifecycle state of a data key. */
export type KeyState = 'active' | 'decrypt-only';

/** A data key as a store keeps it: metadata plus the key wrapped under the master key, never raw. */
export interface StoredKey {
  id: string;
  /** 1 for the first key of a ring, +1 for each rotation. */
  version: number;
  /** ISO 8601 creation time; rotation age is measured from it, not from process uptime. */
  createdAt: string;
  state: KeyState;
  /** Output of the key wrapper: the data key encrypted under the master key. */
  wrappedKey: string;
}

/** A whole key ring as stored. `revision` increases with every write and drives compare-and-set. */
export interface StoredKeyRing {
  revision: number;
  keys: StoredKey[];
}

/**
 * Where the key ring lives. Implementations must make `save` a compare-and-set so that concurrent
 * writers (threads, processes, instances) can never lose each other's keys.
 */
export interface KeyStore {
  /** The stored ring, or `undefined` when nothing has been stored yet. */
  load(): Promise<StoredKeyRing | undefined>;
  /**
   * Writes `ring` only if the stored revision still equals `expectedRevision` (0 for "nothing stored").
   * Resolves `false`, writing nothing, when another writer got there first.
   */
  save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean>;
}
