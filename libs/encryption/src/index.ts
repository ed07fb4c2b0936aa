export { EncryptionModule } from './encryption.module.js';
export { EncryptionService } from './encryption.service.js';
export { KeyManagerService } from './key-manager.service.js';
export type { KeyStoreStatus, KeyRingFleetStatus } from './key-manager.service.js';
export { EncryptionAuditor } from './encryption-audit.service.js';
export { EncryptionEvents } from './encryption-events.service.js';
export { ENCRYPTION_OPTIONS } from './encryption.constants.js';
export { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
export { resolveEncryptionOptions, DEFAULT_ENCRYPTION_OPTIONS } from './config/resolve-encryption-options.js';
export { InMemoryKeyStore } from './stores/in-memory-key.store.js';
export type { InMemoryKeyStoreOptions } from './stores/in-memory-key.store.js';
export { FileKeyStore } from './stores/file-key.store.js';
export type { FileKeyStoreOptions } from './stores/file-key.store.js';
export { toBase64, fromBase64 } from './crypto/base64.js';
export { ciphertextKeyId } from './crypto/ciphertext-key-id.js';
export {
  EncryptionError,
  DecryptionError,
  KeyNotFoundError,
  KeyRetiredError,
  KeyStoreUnavailableError,
  KeyStoreCorruptError,
  KeyStoreLockTimeoutError,
  MasterKeyMismatchError,
  KeyStateError,
  DecompressionLimitError,
  FormatDisabledError,
  EncryptionInputError,
  EncryptionConfigError,
} from './errors/encryption.errors.js';
export type { JsonValue, Plaintext } from './crypto/plaintext-codec.js';
export type { DerivedKey } from './crypto/password-key-derivation.js';
export type { RsaKeyPair } from './crypto/rsa-key-pair.js';
export type { CompressionAlgorithm } from './crypto/compression.js';
export type {
  EncryptionModuleOptions,
  ResolvedEncryptionOptions,
  EncryptionAlgorithm,
  AsymmetricAlgorithm,
  KeyRetentionPolicy,
  PaddingScheme,
  ScheduledRotationOptions,
  EncryptionClock,
  WorkerPoolOptions,
} from './interfaces/encryption-module-options.interface.js';
export type {
  EncryptOptions,
  DecryptOptions,
  EncryptionContext,
  UntypedPayloadAs,
} from './interfaces/encryption-call-options.interface.js';
export type { BatchEncryptOptions, BatchDecryptOptions, BatchItemResult } from './interfaces/batch-options.interface.js';
export type { StreamEncryptOptions, StreamDecryptOptions } from './interfaces/stream-options.interface.js';
export type {
  KeyStore,
  StoredKey,
  StoredKeyRing,
  StoredKeyPair,
  KeyPairState,
  KeyPairAlgorithm,
  KeyState,
  InstanceHeartbeat,
  KeyUsageDelta,
  StoredKeyUsage,
} from './interfaces/key-store.interface.js';
export type { KeyMetadata } from './interfaces/key-metadata.interface.js';
export type { KeyPairMetadata } from './interfaces/key-pair-metadata.interface.js';
export type {
  EncryptionEvent,
  EncryptionEventListener,
  EncryptionOperationEvent,
  EncryptionBatchEvent,
  KeyRotatedEvent,
  RequestRejectedEvent,
  AuditEvent,
  AuditAction,
} from './interfaces/encryption-event.interface.js';

// Field-level encryption
export { Encrypted } from './decorators/encrypted.decorator.js';
export { EncryptedBody } from './decorators/encrypted-body.decorator.js';
export { EncryptionInterceptor } from './interceptors/encryption.interceptor.js';
export { EncryptedResponseInterceptor } from './interceptors/encrypted-response.interceptor.js';
export { EncryptedRequestInterceptor } from './interceptors/encrypted-request.interceptor.js';
export { FieldEncryptionService } from './field-encryption/field-encryption.service.js';
export { EncryptedFieldError } from './field-encryption/encrypted-field.error.js';
export { EncryptedFieldException } from './field-encryption/encrypted-field.exception.js';
export { ENCRYPTED_FIELDS_METADATA, ENCRYPTED_BODY_METADATA, ENCRYPTION_INTERCEPTOR_OPTIONS } from './encryption.constants.js';
export type { DecryptFieldsOptions } from './field-encryption/field-encryption.service.js';
export type { EncryptedFieldRejection } from './field-encryption/encrypted-field.error.js';
export type { EncryptedFieldRejectionBody } from './field-encryption/encrypted-field.exception.js';
export type { EncryptedFieldOptions, EncryptedBodyOptions } from './interfaces/encrypted-field-options.interface.js';
export type { EncryptionInterceptorOptions } from './interfaces/encryption-interceptor-options.interface.js';
