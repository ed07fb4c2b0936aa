/**
 * Defaults of the encryption interceptors. Provide them as `ENCRYPTION_INTERCEPTOR_OPTIONS` in the
 * module that registers the interceptor, or pass them to its constructor.
 */
export interface EncryptionInterceptorOptions {
  /**
   * Longest text-form ciphertext, in characters, accepted for one `@Encrypted()` request field;
   * `@Encrypted({ maxLength })` overrides it per field. Longer values are refused before decryption.
   * @default 65536
   */
  maxFieldLength?: number;
  /** Longest text-form ciphertext, in characters, accepted as an `@EncryptedBody()` body. @default 1048576 */
  maxBodyLength?: number;
}
