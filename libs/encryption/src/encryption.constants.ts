/** Injection token of the resolved, validated options (`ResolvedEncryptionOptions`). */
export const ENCRYPTION_OPTIONS = 'ENCRYPTION:OPTIONS';
