import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Transform, TransformOptions } from 'node:stream';

import type { AeadCipher } from '../crypto/aead.js';
import { AES_256_GCM } from '../crypto/aead.js';
import { DataKey, explicitKeyId } from '../crypto/data-key.js';
import { contextBytes } from '../crypto/envelope-input.js';
import type { StreamHeader } from '../crypto/stream-header.js';
import {
  isStreamCipher,
  MAX_STREAM_CHUNK_SIZE,
  serializeStreamHeader,
  STREAM_NONCE_PREFIX_SIZE,
  STREAM_SALT_SIZE,
} from '../crypto/stream-header.js';
import type { StreamOutcome } from '../crypto/stream-transforms.js';
import { DecryptStream, EncryptStream } from '../crypto/stream-transforms.js';
import type { EncryptionAuditor } from '../encryption-audit.service.js';
import type { EncryptionEvents } from '../encryption-events.service.js';
import { DecryptionError, EncryptionError, EncryptionInputError, KeyNotFoundError, KeyRetiredError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { StreamDecryptOptions, StreamEncryptOptions } from '../interfaces/stream-options.interface.js';
import type { KeyManagerService } from '../key-manager.service.js';

/**
 * Chunk size of new streams. Every chunk costs a cipher context and a tag, so 1 MiB keeps that to ~0.1%
 * of the work (64 KiB chunks ran at ~0.6 of one bare GCM pass); each side still holds only about one
 * chunk. The size is in the header, so streams made with any other size still decrypt.
 */
export const DEFAULT_STREAM_CHUNK_SIZE = 1024 * 1024;

export interface StreamCollaborators {
  options: ResolvedEncryptionOptions;
  keyManager: KeyManagerService;
  events: EncryptionEvents;
  auditor: EncryptionAuditor;
  /** The service's cipher; a stream uses it when it can (AES-256-GCM otherwise). */
  cipher: AeadCipher;
}

/**
 * `createEncryptStream()` / `createDecryptStream()` for `EncryptionService`: the key ring, options and
 * events around the streaming format's Transforms (crypto/stream-transforms.ts). Each stream reports
 * one `operation` event when it ends.
 */
export class StreamEncryption {
  private readonly cipher: AeadCipher;

  constructor(private readonly c: StreamCollaborators) {
    // AES-256-CBC-HMAC-SHA256 has no nonce to count chunks with; Fernet has no streaming form.
    this.cipher = isStreamCipher(c.cipher) ? c.cipher : AES_256_GCM;
  }

  createEncryptStream(options: StreamEncryptOptions = {}): Transform {
    const chunkSize = options.chunkSize ?? DEFAULT_STREAM_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_STREAM_CHUNK_SIZE) {
      throw new EncryptionInputError(MESSAGES.INVALID_STREAM_OPTION(`chunkSize must be an integer from 1 to ${MAX_STREAM_CHUNK_SIZE}`));
    }
    const context = contextBytes(options.context);
    const explicitKey = options.key === undefined ? undefined : this.explicitDataKey(options.key);
    const managed = explicitKey ? undefined : this.c.keyManager.activeKey;
    const dataKey = explicitKey ?? managed!.dataKey;
    const cipher = this.cipher;
    const salt = randomBytes(STREAM_SALT_SIZE);
    const header: Omit<StreamHeader, 'bytes'> = {
      cipher,
      chunkSize,
      keyId: dataKey.id,
      commitment: dataKey.commitment,
      salt,
      noncePrefix: randomBytes(STREAM_NONCE_PREFIX_SIZE),
    };
    if (managed) {
      managed.usage.encryptions++;
      managed.usage.lastUsedAt = Date.now();
    }
    return new EncryptStream(
      {
        cipher,
        key: dataKey.streamKey(cipher, salt),
        header: { ...header, bytes: serializeStreamHeader(header) },
        context,
        onEnd: this.reporter('encrypt', cipher.name),
      },
      transformOptions(options),
    );
  }

  createDecryptStream(options: StreamDecryptOptions = {}): Transform {
    const context = contextBytes(options.context);
    const explicitKey = options.key === undefined ? undefined : this.explicitDataKey(options.key);
    let algorithm = 'unknown';
    const report = this.reporter('decrypt', () => algorithm);
    return new DecryptStream(
      {
        context,
        resolveKey: (header) => {
          algorithm = header.cipher.name;
          if (explicitKey && timingSafeEqual(explicitKey.commitment, header.commitment)) {
            return explicitKey.streamKey(header.cipher, header.salt);
          }
          const key = this.ringKey(header);
          if (key) return key;
          // Maybe another instance just made this key: reload (rate-limited) and look once more.
          return this.c.keyManager.reloadForUnknownKey().then(() => {
            const reloaded = this.ringKey(header);
            if (!reloaded) throw new KeyNotFoundError(header.keyId);
            return reloaded;
          });
        },
        onEnd: (outcome) => {
          if (outcome.error instanceof DecryptionError) this.c.auditor.decryptionFailed();
          report(outcome);
        },
      },
      transformOptions(options),
    );
  }

  /** The stream's subkey from the ring key its header names, `undefined` when no loaded key has that id. */
  private ringKey(header: StreamHeader): Buffer | undefined {
    const managed = this.c.keyManager.findKey(header.keyId);
    if (!managed) return undefined;
    if (!managed.dataKey) throw new KeyRetiredError(header.keyId);
    if (!timingSafeEqual(managed.dataKey.commitment, header.commitment)) throw new DecryptionError();
    managed.usage.decryptions++;
    managed.usage.lastUsedAt = Date.now();
    return managed.dataKey.streamKey(header.cipher, header.salt);
  }

  private explicitDataKey(key: Buffer): DataKey {
    if (!Buffer.isBuffer(key) || key.length < this.c.options.keySize) {
      throw new EncryptionInputError(MESSAGES.INVALID_EXPLICIT_KEY(this.c.options.keySize));
    }
    return new DataKey(explicitKeyId(key), key);
  }

  /** One `operation` event per stream, when it ends or fails (only when someone listens). */
  private reporter(operation: 'encrypt' | 'decrypt', algorithm: string | (() => string)): (outcome: StreamOutcome) => void {
    const start = performance.now();
    return (outcome) => {
      if (!this.c.events.observed) return;
      const failed = outcome.error !== undefined;
      this.c.events.emit({
        type: 'operation',
        operation,
        algorithm: typeof algorithm === 'string' ? algorithm : algorithm(),
        result: failed ? 'failure' : 'success',
        errorCode: failed ? (outcome.error instanceof EncryptionError ? outcome.error.code : 'INTERNAL') : undefined,
        durationSeconds: (performance.now() - start) / 1000,
        plaintextBytes: outcome.plaintextBytes,
        ciphertextBytes: outcome.ciphertextBytes,
      });
    };
  }
}

function transformOptions(options: { highWaterMark?: number }): TransformOptions | undefined {
  if (options.highWaterMark === undefined) return undefined;
  if (!Number.isInteger(options.highWaterMark) || options.highWaterMark < 1) {
    throw new EncryptionInputError(MESSAGES.INVALID_STREAM_OPTION('highWaterMark must be a positive integer'));
  }
  return { highWaterMark: options.highWaterMark };
}
