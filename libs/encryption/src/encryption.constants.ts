/** Injection token of the resolved, validated options (`ResolvedEncryptionOptions`). */
export const ENCRYPTION_OPTIONS = 'ENCRYPTION:OPTIONS';

/** Metadata key, on a class, of its `@Encrypted()` properties and their options. */
export const ENCRYPTED_FIELDS_METADATA = 'ENCRYPTION:ENCRYPTED_FIELDS';

/** Metadata key, on a handler or controller, of `@EncryptedBody()`. */
export const ENCRYPTED_BODY_METADATA = 'ENCRYPTION:ENCRYPTED_BODY';

/** Injection token of the optional `EncryptionInterceptorOptions`. */
export const ENCRYPTION_INTERCEPTOR_OPTIONS = 'ENCRYPTION:INTERCEPTOR_OPTIONS';
