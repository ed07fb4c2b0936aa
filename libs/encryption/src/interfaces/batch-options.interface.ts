import type { DecryptOptions, EncryptOptions } from './encryption-call-options.interface.js';

/** Options of `encryptMany()`: the `encrypt()` options, applied to every item, and the failure mode. */
export interface BatchEncryptOptions extends EncryptOptions {
  /**
   * Reject with the first failing item's error (in input order) instead of settling every item; the
   * result is then the ciphertexts themselves. @default false
   */
  failFast?: boolean;
}

/** Options of `decryptMany()`: the `decrypt()` options, applied to every item, and the failure mode. */
export interface BatchDecryptOptions extends DecryptOptions {
  /**
   * Reject with the first failing item's error (in input order) instead of settling every item; the
   * result is then the plaintexts themselves. @default false
   */
  failFast?: boolean;
}

/** One item of a settled batch, at the index of its input: its value, or why it failed. */
export type BatchItemResult<T> = { ok: true; value: T } | { ok: false; error: Error };
