/** Options of `@Encrypted()` for one property. */
export interface EncryptedFieldOptions {
  /**
   * Bound data (additional authenticated data) for this field: the same value is needed to decrypt,
   * so a ciphertext copied into another field (or another record, when the value names it) fails.
   * @default none
   */
  context?: string | Record<string, string>;
  /** Override the module's `enableCompression` for this field (its threshold still applies). @default the module setting */
  compress?: boolean;
  /**
   * Longest text-form ciphertext, in characters, accepted for this field in a request.
   * @default `EncryptionInterceptorOptions.maxFieldLength`
   */
  maxLength?: number;
}

/** Options of `@EncryptedBody()`. */
export interface EncryptedBodyOptions {
  /** Bound data the whole-body ciphertext was encrypted with. @default none */
  context?: string | Record<string, string>;
  /**
   * Longest text-form ciphertext, in characters, accepted as the body.
   * @default `EncryptionInterceptorOptions.maxBodyLength`
   */
  maxLength?: number;
}
