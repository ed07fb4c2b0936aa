import { EncryptionInputError, KeyStoreCorruptError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { KeyUsageDelta, StoredKeyRing, StoredKeyUsage } from '../interfaces/key-store.interface.js';

const KEY_STATES = new Set(['staged', 'active', 'decrypt-only', 'retired', 'destroyed']);
const KEY_PAIR_STATES = new Set(['active', 'decrypt-only', 'retired']);

/**
 * Checks a ring before any store writes it: revisions only grow, so a watcher that compares revisions
 * never mistakes a new ring for one it already has.
 */
export function assertSaveable(ring: StoredKeyRing, expectedRevision: number): void {
  if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) {
    throw new EncryptionInputError(MESSAGES.KEY_RING_REVISION(ring?.revision, expectedRevision));
  }
  if (!Number.isSafeInteger(ring?.revision) || ring.revision <= expectedRevision) {
    throw new EncryptionInputError(MESSAGES.KEY_RING_REVISION(ring?.revision, expectedRevision));
  }
  if (!Array.isArray(ring.keys)) throw new EncryptionInputError('A saved key ring must have a keys array');
}

/**
 * Validates what a store read back. Anything that isn't a key ring is a `KeyStoreCorruptError`: better to
 * stop at boot than to run with a ring that silently lost keys.
 */
export function parseStoredKeyRing(value: unknown, location: string): StoredKeyRing {
  const problem = describeProblem(value);
  if (problem) throw new KeyStoreCorruptError(location, problem);
  return value as StoredKeyRing;
}

/** Like `parseStoredKeyRing`, from JSON text. The parser's message is kept out: it can quote stored bytes. */
export function parseStoredKeyRingJson(text: string, location: string): StoredKeyRing {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeyStoreCorruptError(location, text.length === 0 ? 'empty' : 'not valid JSON, possibly truncated');
  }
  return parseStoredKeyRing(value, location);
}

/** Sums deltas per key id (a batch may name a key twice) in key id order, so concurrent writers lock rows in one order. */
export function mergeUsageDeltas(deltas: readonly KeyUsageDelta[]): Array<[string, StoredKeyUsage]> {
  const totals = new Map<string, StoredKeyUsage>();
  for (const delta of deltas) {
    const total = totals.get(delta.keyId) ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 };
    total.encryptions += delta.encryptions;
    total.decryptions += delta.decryptions;
    total.lastUsedAt = Math.max(total.lastUsedAt, delta.lastUsedAt);
    totals.set(delta.keyId, total);
  }
  return [...totals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Calls a `watch` callback. A throwing callback must not break the store's notification loop (or crash
 * the process from a timer), so its error is dropped: callbacks handle their own failures.
 */
export function notify(onChange: (revision: number) => void, revision: number): void {
  try {
    onChange(revision);
  } catch {
    // See above: the watcher stays subscribed.
  }
}

function describeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a key ring object';
  if (!Number.isSafeInteger(value.revision) || (value.revision as number) < 0) return 'invalid revision';
  if (!Array.isArray(value.keys)) return 'keys is not an array';
  for (const field of ['masterKeyCheck', 'masterKeySalt']) {
    if (value[field] !== undefined && typeof value[field] !== 'string') return `invalid ${field}`;
  }
  for (const [index, key] of value.keys.entries()) {
    if (!isObject(key)) return `key ${index} is not an object`;
    if (typeof key.id !== 'string' || key.id.length === 0) return `key ${index} has no id`;
    if (!Number.isSafeInteger(key.version)) return `key ${index} has an invalid version`;
    if (typeof key.createdAt !== 'string' || Number.isNaN(Date.parse(key.createdAt))) {
      return `key ${index} has an invalid createdAt`;
    }
    if (typeof key.state !== 'string' || !KEY_STATES.has(key.state)) return `key ${index} has an invalid state`;
    if (key.wrappedKey !== undefined && typeof key.wrappedKey !== 'string') return `key ${index} has an invalid wrappedKey`;
    if (key.stateChangedAt !== undefined && typeof key.stateChangedAt !== 'string') {
      return `key ${index} has an invalid stateChangedAt`;
    }
    if (key.stagedRevision !== undefined && !Number.isSafeInteger(key.stagedRevision)) {
      return `key ${index} has an invalid stagedRevision`;
    }
  }
  return value.keyPairs === undefined ? undefined : describeKeyPairsProblem(value.keyPairs);
}

function describeKeyPairsProblem(keyPairs: unknown): string | undefined {
  if (!Array.isArray(keyPairs)) return 'keyPairs is not an array';
  for (const [index, pair] of keyPairs.entries()) {
    if (!isObject(pair)) return `key pair ${index} is not an object`;
    if (typeof pair.kid !== 'string' || pair.kid.length === 0) return `key pair ${index} has no kid`;
    if (typeof pair.state !== 'string' || !KEY_PAIR_STATES.has(pair.state)) {
      return `key pair ${index} has an invalid state`;
    }
    if (!isObject(pair.publicJwk)) return `key pair ${index} has an invalid publicJwk`;
    if (typeof pair.wrappedPrivateKey !== 'string') return `key pair ${index} has an invalid wrappedPrivateKey`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
