import type { AeadAlgorithmName } from '../crypto/aead.js';
import type { CompressionAlgorithm } from '../crypto/compression.js';
import type { KeyStore } from './key-store.interface.js';

/**
 * What new ciphertexts are made with: an AEAD in the native envelope (docs/FORMAT.md), or `'fernet'`
 * for standard Fernet tokens (Python's `cryptography.fernet`), keyed from the ring (see
 * `KeyManagerService.exportFernetKeys()`).
 */
export type EncryptionAlgorithm = AeadAlgorithmName | 'fernet';

/**
 * Key pairs for asymmetric encryption (JWE with A256GCM content encryption): `'RSA-OAEP-256'` (modulus
 * `rsaKeySize`), or `'ECDH-ES+A256KW'` on the X25519 or P-256 curve.
 */
export type AsymmetricAlgorithm = 'RSA-OAEP-256' | 'ECDH-ES+A256KW-X25519' | 'ECDH-ES+A256KW-P256';
export type PaddingScheme = 'PKCS7';

/** How many previous keys the ring keeps for decryption. Both limits apply when both are set. */
export interface KeyRetentionPolicy {
  /** Keep at most this many previous (decrypt-only) keys; the oldest go first. @default unlimited */
  maxPreviousKeys?: number;
  /** Drop previous keys created more than this many milliseconds ago. @default unlimited */
  maxAgeMs?: number;
}

/** Where the library reads the time, in epoch milliseconds. Replace it to control key ages in tests. */
export interface EncryptionClock {
  now(): number;
}

/**
 * Scheduled rotation, performed by `EncryptionSchedulingModule` from `nestjs-encryption/scheduling`
 * (ignored when that module isn't imported).
 */
export interface ScheduledRotationOptions {
  /** Check the active key's age on a schedule and rotate it once it reaches `keyRotationInterval`. @default true */
  enabled?: boolean;
  /** Milliseconds between two checks; a failed rotation is retried at the next one. 1 to 2^31-1. @default 60000 */
  checkIntervalMs?: number;
}

/** How a new key reaches every instance sharing a key store before it becomes active. */
export interface KeyPropagationOptions {
  /**
   * A staged key is promoted to active once every live instance reports it has loaded it, or at the
   * latest after this many milliseconds. @default 10000
   */
  delayMs?: number;
  /** Milliseconds between heartbeats (ring revision held, usage flush, staged-key check). @default 5000 */
  heartbeatIntervalMs?: number;
}

/** When failed decryptions are reported as a burst in the audit log. */
export interface DecryptionFailureBurstOptions {
  /** Failures within one window that make a burst. @default 20 */
  threshold?: number;
  /** Window length in milliseconds. @default 10000 */
  windowMs?: number;
}

/**
 * Worker threads (piscina) for large payloads: sealing and opening them, and compressing them first,
 * happen off the event loop, and `encryptMany()` of large payloads spreads over every core. The
 * calling thread takes its share of a batch too: of a batch of JSON values or strings, it encodes
 * each task before a worker seals it (so the workers start on the first tasks while it encodes the
 * next); of a batch with bytes in it, it seals one part smaller than `threshold`, items adding up to
 * about 256 KiB or one larger item, per turn of the event loop. A worker receives the
 * derived cipher key of one algorithm, never a data key or the master key. The threads start with the
 * first payload that needs them and stop when the module is destroyed.
 */
export interface WorkerPoolOptions {
  /**
   * Worker threads; 0 keeps every operation on the calling thread. 0 to 64. Threads start on first use;
   * from then on the pool keeps up to 32 MiB of shared memory to hand inputs to them (wiped after each
   * use). @default os.availableParallelism()
   */
  size?: number;
  /**
   * Smallest payload, in bytes, that goes to a worker (for `encryptMany()`, the batch's total, which
   * is then split over every thread and the calling one; for a batch of JSON values or strings, the
   * total estimated from its first 64 items, or counted exactly when that estimate is below). Sealing 1 MiB with
   * AES-256-GCM holds the event loop for about a millisecond, less than the hand-off to a thread and
   * the copies it needs cost in throughput (docs/BENCHMARKS.md); from a few MiB the pause becomes worth
   * avoiding. 1024 to 2^30.
   * @default 4194304 (4 MiB)
   */
  threshold?: number;
}

/** Options of `EncryptionModule.forRoot()` / `forRootAsync()`. Every field is optional. */
export interface EncryptionModuleOptions {
  /** Bytes of each generated data key (input to HKDF, so 64 works with every algorithm). 32 or 64. @default 32 */
  keySize?: number;
  /** Bytes of the random salt `deriveKey()` generates. 16 to 64. @default 16 */
  saltSize?: number;
  /** PBKDF2-HMAC-SHA256 iterations for `deriveKey()`; never below 100000 (OWASP 2023). @default 600000 */
  iterations?: number;
  /**
   * Format and cipher of new ciphertexts; every supported one decrypts, whatever this is set to.
   * `'fernet'` makes `encryptToString()` return Fernet tokens (bytes only, no context, no compression).
   * @default 'AES-256-GCM'
   */
  algorithm?: EncryptionAlgorithm;
  /**
   * Maximum age, in seconds, of a Fernet token `decrypt()` accepts (tokens stamped more than 60 s in
   * the future are refused too, as in Python). Overridable per call (`DecryptOptions.fernetTtlSeconds`).
   * @default no age limit
   */
  fernetTtlSeconds?: number;
  /** Age in milliseconds after which the active key should be rotated. @default 30 days */
  keyRotationInterval?: number;
  /** Compress payloads of at least `compressionThreshold` bytes when it makes them smaller. @default true */
  enableCompression?: boolean;
  /** Smallest payload, in bytes, that is considered for compression. @default 1024 */
  compressionThreshold?: number;
  /** Codec used when compressing. @default 'gzip' */
  compressionAlgorithm?: CompressionAlgorithm;
  /** Largest plaintext, in bytes, that decompression may produce; larger payloads are rejected. @default 64 MiB */
  maxDecompressedSize?: number;
  /** Allow `KeyManagerService.deriveKey()`. @default true */
  enableKeyDerivation?: boolean;
  /**
   * Asymmetric encryption: a key pair in the ring (made at first boot), its JWKS (`publicJwks()`),
   * `encryptForPublicKey()`, compact JWE in `decrypt()`, and `generateKeyPair()`. When false, none of
   * these work and no key pair is made. @default true
   */
  enableAsymmetric?: boolean;
  /** Algorithm of the ring's key pairs; applies to key pairs made from now on. @default 'RSA-OAEP-256' */
  asymmetricAlgorithm?: AsymmetricAlgorithm;
  /** RSA modulus length in bits: 2048, 3072 or 4096 (ring key pairs and `generateKeyPair()`). @default 2048 */
  rsaKeySize?: number;
  /** Block padding for AES-256-CBC-HMAC-SHA256; PKCS#7 is the only scheme that is safe with the MAC. @default 'PKCS7' */
  paddingScheme?: PaddingScheme;
  /** Which previous keys stay available for decryption after a rotation. @default keep all */
  keyRetention?: KeyRetentionPolicy;
  /**
   * Master key (key-encryption key) that wraps data keys before they reach the store: 32 bytes, as a
   * Buffer or base64. @default a random key for this process, only suitable for the in-memory store
   */
  masterKey?: Buffer | string;
  /**
   * Passphrase the master key is derived from (PBKDF2-HMAC-SHA256, 600000 iterations, salt stored with
   * the ring), when `masterKey` is not given.
   */
  masterKeyPassphrase?: string;
  /** Where the key ring is kept. @default an `InMemoryKeyStore` */
  keyStore?: KeyStore;
  /** Names this process in heartbeats and audit records. @default a random id */
  instanceId?: string;
  /** Staged-key propagation across instances. @default `{ delayMs: 10000, heartbeatIntervalMs: 5000 }` */
  keyPropagation?: KeyPropagationOptions;
  /**
   * Rotate once the active key has made this many encryptions (counted across instances, checked
   * every heartbeat). Random 96-bit nonces must stay far below 2^32 messages per key. @default 2^30
   */
  maxEncryptionsPerKey?: number;
  /**
   * A ciphertext with an unknown key id reloads the ring from the store before failing, at most once
   * per this many milliseconds. @default 1000
   */
  unknownKeyReloadIntervalMs?: number;
  /** Audit a burst of failed decryptions. @default `{ threshold: 20, windowMs: 10000 }` */
  decryptionFailureBurst?: DecryptionFailureBurstOptions;
  /** How `EncryptionSchedulingModule` checks and rotates the active key. @default `{ enabled: true, checkIntervalMs: 60000 }` */
  scheduledRotation?: ScheduledRotationOptions;
  /** Time source for key creation times and ages. @default the system clock (`Date.now()`) */
  clock?: EncryptionClock;
  /** Worker threads for large payloads. @default `{ size: os.availableParallelism(), threshold: 4194304 }` */
  workerPool?: WorkerPoolOptions;
}

/** Options after defaults are applied and validated: what the services read. */
export interface ResolvedEncryptionOptions
  extends Required<
    Omit<
      EncryptionModuleOptions,
      | 'masterKey'
      | 'masterKeyPassphrase'
      | 'keyStore'
      | 'keyRetention'
      | 'scheduledRotation'
      | 'clock'
      | 'keyPropagation'
      | 'decryptionFailureBurst'
      | 'fernetTtlSeconds'
      | 'workerPool'
    >
  > {
  /** Absent when Fernet tokens have no age limit. */
  fernetTtlSeconds?: number;
  keyRetention: KeyRetentionPolicy;
  scheduledRotation: Required<ScheduledRotationOptions>;
  clock: EncryptionClock;
  /** Absent when none was configured: the in-memory store then uses a random one. */
  masterKey?: Buffer;
  masterKeyPassphrase?: string;
  keyStore: KeyStore;
  keyPropagation: Required<KeyPropagationOptions>;
  decryptionFailureBurst: Required<DecryptionFailureBurstOptions>;
  workerPool: Required<WorkerPoolOptions>;
}
