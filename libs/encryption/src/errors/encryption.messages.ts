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
  KEY_RETIRED: 'The key of this ciphertext is retired and refuses decryption',
  MASTER_KEY_MISMATCH:
    'The configured master key does not match the key store (wrong key or wrong store); nothing was written',
  MASTER_KEY_REQUIRED:
    'A persistent key store needs a master key: set masterKey (32 bytes, base64) or masterKeyPassphrase',
  STORE_UNAVAILABLE: (operation: string) =>
    `The key store is unavailable; ${operation} will be retried when it is back`,
  STORE_RING_MISSING:
    'The key store no longer holds the key ring (wiped, or restarted without persistence); writes wait until it is restored',
  KEY_UNKNOWN_ID: (id: string) => `No key with id ${id}`,
  KEY_BAD_STATE: (id: string, state: string, operation: string) => `Key ${id} is ${state} and can't be ${operation}`,
  KEY_RING_NOT_READY: 'The key ring is not loaded yet: wait for the module to initialise',
  INVALID_FERNET_KEY: 'A Fernet key must be 32 bytes: url-safe base64 with padding (44 characters) or raw bytes',
  NO_FERNET_KEYS: 'At least one Fernet key is required',
  INVALID_FERNET_IV: 'A Fernet IV must be 16 bytes',
  INVALID_FERNET_TIME: 'A Fernet timestamp must be a valid date no earlier than 1970-01-01',
  INVALID_FERNET_TTL: 'A Fernet TTL must be a non-negative whole number of seconds',
  NOT_BYTES: 'The data must be a Buffer or Uint8Array',
  INVALID_RSA_KEY: (kind: 'public' | 'private', minBits: number) =>
    `Expected an RSA ${kind} key (KeyObject, PEM or JWK) of at least ${minBits} bits`,
  RSA_OAEP_MESSAGE_TOO_LONG: (max: number) => `RSA-OAEP with this key can encrypt at most ${max} bytes`,
  UNSUPPORTED_JWE_ALGORITHM: (kind: 'key management' | 'content encryption', supported: readonly string[]) =>
    `Unsupported JWE ${kind} algorithm: expected one of ${supported.join(', ')}`,
  INVALID_JWE_KEY: (alg: string) => `The key can't be used for JWE ${alg}`,
  INVALID_JWE_KID: 'A JWE key id (kid) must be a non-empty string',
  INVALID_JWKS_KEY: 'Only RSA, EC and OKP public keys with a kid can be published in a JWKS',
  KEY_STORE_CORRUPT: (location: string, reason: string) =>
    `The key store at ${location} can't be read (${reason}); it won't be overwritten: restore it from a backup`,
  KEY_STORE_LOCK_TIMEOUT: (lockPath: string, timeoutMs: number) =>
    `The key store lock ${lockPath} is still held by another writer after ${timeoutMs} ms`,
  KEY_RING_REVISION: (revision: unknown, expected: number) =>
    `A saved key ring's revision must be an integer greater than the expected revision ${expected} (got ${String(revision)})`,
  INVALID_KEY_STORE_OPTION: (problem: string) => `Invalid key store options: ${problem}`,
  NO_ACTIVE_KEY_PAIR: 'The key ring has no active key pair yet: wait for the module to initialise',
  INVALID_PUBLIC_JWK:
    'Expected a public JWK for RSA-OAEP-256 (RSA, at least 2048 bits) or ECDH-ES+A256KW (X25519 or P-256) with use "enc" if set',
  FERNET_OPTION_UNSUPPORTED: (option: string) => `Fernet tokens can't carry ${option}: it is refused rather than ignored`,
  INVALID_UNTYPED_AS: "The 'as' option must be 'buffer', 'string' or 'json'",
  BATCH_NOT_AN_ARRAY: 'encryptMany() and decryptMany() take an array of items',
  INVALID_STREAM_OPTION: (problem: string) => `Invalid stream options: ${problem}`,
} as const;
