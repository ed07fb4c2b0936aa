/** Every user-facing error message lives here so wording stays consistent and reviewable. */
export const MESSAGES = {
  /** The one message for every authentication failure: it must not reveal which check failed. */
  DECRYPTION_FAILED: 'Decryption failed',
  KEY_NOT_FOUND: 'No key with the ciphertext key id is available for decryption',
  DECOMPRESSION_LIMIT: (limit: number) =>
    `Decrypted payload exceeds the maximum decompressed size of ${limit} bytes`,
  UNSUPPORTED_PLAINTEXT: (kind: string) =>
    `Cannot encrypt a value of type ${kind}: expected a string, a Buffer/Uint8Array or a JSON value`,
  NON_FINITE_NUMBER: 'Cannot encrypt a non-finite number: JSON has no representation for it',
  INVALID_CONTEXT: 'The encryption context must be a string, a Buffer/Uint8Array or an object of strings',
  INVALID_EXPLICIT_KEY: (size: number) => `An explicit key must be a Buffer of at least ${size} bytes`,
  FEATURE_DISABLED: (feature: string, option: string) =>
    `${feature} is disabled by configuration (${option}: false)`,
  INVALID_CONFIG: (problems: string[]) => `Invalid encryption configuration: ${problems.join('; ')}`,
  INVALID_BASE64: 'Value is not valid base64',
  EMPTY_PASSWORD: 'A password must be a non-empty string or Buffer',
  SALT_TOO_SHORT: (size: number) => `A salt must be at least ${size} bytes`,
  KEY_RING_NOT_READY: 'The key ring is not loaded yet: wait for the module to initialise',
} as const;
