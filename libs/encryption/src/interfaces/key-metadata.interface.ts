import type { KeyState } from './key-store.interface.js';

/** What `listKeys()` reveals about a key: identity, lifecycle and usage, never key bytes. */
export interface KeyMetadata {
  id: string;
  version: number;
  state: KeyState;
  createdAt: Date;
  /** Milliseconds since `createdAt`. */
  ageMs: number;
  encryptions: number;
  decryptions: number;
  lastUsedAt?: Date;
}
