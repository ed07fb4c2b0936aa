/**
 * Caller data bound to a ciphertext as additional authenticated data: it is not stored, and
 * decryption fails unless the same context is given again. An object is canonicalised (sorted keys).
 */
export type EncryptionContext = string | Buffer | Uint8Array | Record<string, string>;

export interface EncryptOptions {
  /** Encrypt with this key (at least `keySize` bytes) instead of the ring's active key. */
  key?: Buffer;
  /** Override `enableCompression` for this call (the threshold still applies). */
  compress?: boolean;
  /** Bound data that must be given again to decrypt. */
  context?: EncryptionContext;
}

/** How `decrypt()` returns a payload whose type the ciphertext doesn't record. */
export type UntypedPayloadAs = 'buffer' | 'string' | 'json';

export interface DecryptOptions {
  /** Try this key first; when it doesn't match, the key ring is used by the ciphertext's key id (native envelopes only). */
  key?: Buffer;
  /** `false` returns a compressed payload still compressed, as a Buffer. @default true */
  decompress?: boolean;
  /**
   * The context given at encryption. Fernet tokens and compact JWEs can't carry one: with a context
   * they are refused (`DecryptionError`) rather than accepted unbound.
   */
  context?: EncryptionContext;
  /**
   * The type to return for payloads that don't record theirs: Fernet tokens, and JWEs without a `cty`
   * this library knows. `'string'` decodes UTF-8, `'json'` parses JSON (invalid data is a
   * `DecryptionError`). Ignored for native envelopes and typed JWEs, which restore their own type.
   * @default 'buffer'
   */
  as?: UntypedPayloadAs;
  /** Maximum age in seconds of a Fernet token, for this call. @default the module's `fernetTtlSeconds` */
  fernetTtlSeconds?: number;
}
