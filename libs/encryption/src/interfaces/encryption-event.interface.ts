import type { KeyMetadata } from './key-metadata.interface.js';

/** One `encrypt` or `decrypt` call. Carries sizes and ids only: never plaintext or key bytes. */
export interface EncryptionOperationEvent {
  type: 'operation';
  operation: 'encrypt' | 'decrypt';
  algorithm: string;
  result: 'success' | 'failure';
  /** `code` of the `EncryptionError` on failure. */
  errorCode?: string;
  durationSeconds: number;
  /** Bytes of the encoded plaintext (before compression), when known. */
  plaintextBytes?: number;
  /** Bytes of the binary envelope, when known. */
  ciphertextBytes?: number;
  /** Compressed size divided by original size, when the payload was compressed. */
  compressionRatio?: number;
  /** The caller's explicit key didn't match and the ring's key by id was used instead. */
  keyFallback?: boolean;
}

/**
 * One `encryptMany()` or `decryptMany()` call: a single event for the whole batch, never one per item.
 * Counts and sizes only.
 */
export interface EncryptionBatchEvent {
  type: 'batch';
  operation: 'encrypt' | 'decrypt';
  /** The algorithm of the batch's items, or `mixed` when a decrypted batch held several. */
  algorithm: string;
  /** Items in the batch. */
  items: number;
  /** Items that succeeded. */
  succeeded: number;
  /** Items that failed. With `failFast`, items after the first failure are in neither count. */
  failed: number;
  /** Failed items by the `code` of their `EncryptionError` (`INTERNAL` for any other error). */
  errorCodes: Record<string, number>;
  /** The whole batch. */
  durationSeconds: number;
  /** Bytes of the encoded plaintexts of the successful items (before compression). */
  plaintextBytes: number;
  /** Bytes of the binary ciphertexts of the successful items. */
  ciphertextBytes: number;
}

/** The active key changed. */
export interface KeyRotatedEvent {
  type: 'key-rotated';
  key: KeyMetadata;
}

/** An HTTP request was refused because an encrypted field or body could not be decrypted. */
export interface RequestRejectedEvent {
  type: 'request-rejected';
  /** Dotted path of the field, or `body` for a whole-body envelope. Never the value. */
  field: string;
  /** `code` of the underlying `EncryptionError`, e.g. `DECRYPTION_FAILED`, `KEY_NOT_FOUND`, `INVALID_TYPE`. */
  reason: string;
}

export type AuditAction =
  | 'key-created'
  | 'key-staged'
  | 'key-activated'
  | 'key-decrypt-only'
  | 'key-retired'
  | 'key-destroyed'
  | 'master-key-rewrapped'
  | 'store-error'
  | 'store-recovered'
  | 'decryption-failures-burst'
  | 'key-pair-created'
  | 'key-pair-activated'
  | 'fernet-keys-exported';

/**
 * A structured audit record of a lifecycle change, a master key rewrap, a store error or a burst of
 * failed decryptions. Also written through the Nest logger. Ids, counts and times only.
 */
export interface AuditEvent {
  type: 'audit';
  action: AuditAction;
  /** The key concerned, when there is one. */
  keyId?: string;
  /** The instance (process) that observed or made the change. */
  instanceId: string;
  /** ISO 8601. */
  at: string;
  /** Non-secret details: counts, revisions, error codes. */
  details?: Record<string, string | number | boolean>;
}

export type EncryptionEvent =
  | EncryptionOperationEvent
  | EncryptionBatchEvent
  | KeyRotatedEvent
  | RequestRejectedEvent
  | AuditEvent;
export type EncryptionEventListener = (event: EncryptionEvent) => void;
