/**
 * Lifecycle of a data key:
 * - `staged`: published for decryption only, waiting until every instance has loaded it;
 * - `active`: the one key new ciphertexts are made with;
 * - `decrypt-only`: a previous key, still decrypts;
 * - `retired`: refuses decryption (like Vault's min_decryption_version), key bytes still stored;
 * - `destroyed`: key bytes erased, metadata kept for the audit trail.
 */
export type KeyState = 'staged' | 'active' | 'decrypt-only' | 'retired' | 'destroyed';

/** A data key as a store keeps it: metadata plus the key wrapped under the master key, never raw. */
export interface StoredKey {
  id: string;
  /** 1 for the first key of a ring, +1 for each rotation. */
  version: number;
  /** ISO 8601 creation time; rotation age is measured from it, not from process uptime. */
  createdAt: string;
  state: KeyState;
  /** The data key encrypted under the master key; absent once the key is destroyed. */
  wrappedKey?: string;
  /** ISO 8601 time of the last state change, when there was one. */
  stateChangedAt?: string;
  /** For a staged key: the ring revision that introduced it; an instance holding this revision has it. */
  stagedRevision?: number;
}

/**
 * Lifecycle of a key pair: `active` is published and is what `encryptForPublicKey()` uses by default;
 * `decrypt-only` is a previous pair, still published in the JWKS and still decrypting; `retired` is
 * neither published nor used, its wrapped private key kept.
 */
export type KeyPairState = 'active' | 'decrypt-only' | 'retired';

/** Key management algorithm of a stored key pair (JWE `alg`). */
export type KeyPairAlgorithm = 'RSA-OAEP-256' | 'ECDH-ES+A256KW';

/**
 * A key pair for JWE as a store keeps it: the public JWK in the clear, the private JWK only wrapped
 * under the master key (with the `kid` bound as the wrapping's AAD).
 */
export interface StoredKeyPair {
  /** RFC 7638 SHA-256 thumbprint of the public key (base64url); also the JWE `kid`. */
  kid: string;
  alg: KeyPairAlgorithm;
  /** Modulus length in bits, for `RSA-OAEP-256`. */
  rsaKeySize?: 2048 | 3072 | 4096;
  /** Curve, for `ECDH-ES+A256KW`. */
  crv?: 'X25519' | 'P-256';
  state: KeyPairState;
  /** ISO 8601 creation time. */
  createdAt: string;
  /** ISO 8601 time of the last state change, when there was one. */
  stateChangedAt?: string;
  /** The public JWK (public members plus `kid`, `alg`, `use: 'enc'`); never a private member. */
  publicJwk: Record<string, string>;
  /** The private JWK as UTF-8 JSON, wrapped like a data key (`crypto/key-wrap.ts`) with the kid as id. */
  wrappedPrivateKey: string;
}

/** A whole key ring as stored. `revision` increases with every write and drives compare-and-set. */
export interface StoredKeyRing {
  revision: number;
  keys: StoredKey[];
  /**
   * Verifies the master key without touching data keys: a value wrapped under the master key.
   * A wrong master key is detected at boot from this, before anything is written.
   */
  masterKeyCheck?: string;
  /** Salt of the passphrase-derived master key (base64), when the master key comes from a passphrase. */
  masterKeySalt?: string;
  /** Key pairs for asymmetric encryption (JWE), active first; absent when none was ever made. */
  keyPairs?: StoredKeyPair[];
}

/** What one instance reported in its last heartbeat. */
export interface InstanceHeartbeat {
  instanceId: string;
  /** Ring revision the instance has loaded. */
  revision: number;
  /** ISO 8601 time of the heartbeat. */
  at: string;
}

/** Usage counted since the last flush, added to the stored totals. */
export interface KeyUsageDelta {
  keyId: string;
  encryptions: number;
  decryptions: number;
  /** Epoch milliseconds of the last use in this batch. */
  lastUsedAt: number;
}

/** Persisted usage totals of one key. */
export interface StoredKeyUsage {
  encryptions: number;
  decryptions: number;
  lastUsedAt: number;
}

/**
 * Where the key ring lives. `load` and the compare-and-set `save` are required; the optional members
 * let a shared store (PostgreSQL, Redis) coordinate many instances.
 */
export interface KeyStore {
  /** The stored ring, or `undefined` when nothing has been stored yet. */
  load(): Promise<StoredKeyRing | undefined>;
  /**
   * Writes `ring` only if the stored revision still equals `expectedRevision` (0 for "nothing stored"),
   * atomically. Resolves `false`, writing nothing, when another writer got there first.
   */
  save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean>;
  /**
   * Calls `onChange` soon after any instance saves a new ring (PostgreSQL LISTEN/NOTIFY, Redis pub/sub).
   * Resolves to a function that stops watching.
   */
  watch?(onChange: (revision: number) => void): Promise<() => Promise<void>>;
  /**
   * Records that `instanceId` holds `revision`; entries older than `ttlMs` count as gone. A `ttlMs`
   * of 0 signs the instance off (sent on shutdown).
   */
  heartbeat?(beat: InstanceHeartbeat, ttlMs: number): Promise<void>;
  /** Live instances (heartbeat within its TTL). */
  instances?(): Promise<InstanceHeartbeat[]>;
  /** Adds usage deltas to the stored totals (called in batches, not per operation). */
  addUsage?(deltas: KeyUsageDelta[]): Promise<void>;
  /** Stored usage totals by key id. */
  loadUsage?(): Promise<Record<string, StoredKeyUsage>>;
  /** Cheap reachability check for health; throws when the store is unreachable. */
  ping?(): Promise<void>;
  /** Releases connections the store opened itself (not ones it was given). */
  close?(): Promise<void>;
}
