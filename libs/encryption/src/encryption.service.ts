import { timingSafeEqual } from 'node:crypto';
import type { Transform } from 'node:stream';

import { Injectable } from '@nestjs/common';
import type { JWK } from 'jose';

import type { BatchStats } from './batch/batch-encryption.js';
import { BatchEncryption, newStats } from './batch/batch-encryption.js';
import type { AeadCipher } from './crypto/aead.js';
import { aeadByName, randomNonce } from './crypto/aead.js';
import type { ForeignFormat } from './crypto/ciphertext-format.js';
import { checkUntypedAs, decodeForeignPayload, foreignFormatOf } from './crypto/ciphertext-format.js';
import { CODEC_BY_ALGORITHM, compress, decompressPayload } from './crypto/compression.js';
import { DataKey, explicitKeyId } from './crypto/data-key.js';
import type { Envelope } from './crypto/envelope.js';
import { CompressionCodec, parseEnvelope, serializeHeader } from './crypto/envelope.js';
import { ciphertextBytes as toBytes, contextBytes } from './crypto/envelope-input.js';
import type { ManagedKey } from './crypto/key-ring.js';
import type { EncodedPlaintext, Plaintext } from './crypto/plaintext-codec.js';
import { decodePlaintext, encodePlaintext, UnencodableValueError } from './crypto/plaintext-codec.js';
import { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
import { EncryptionAuditor } from './encryption-audit.service.js';
import { EncryptionEvents } from './encryption-events.service.js';
import {
  DecryptionError,
  EncryptionError,
  EncryptionInputError,
  KeyNotFoundError,
  KeyRetiredError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import { FernetFormat } from './formats/fernet.format.js';
import { JweFormat } from './formats/jwe.format.js';
import type { BatchDecryptOptions, BatchEncryptOptions, BatchItemResult } from './interfaces/batch-options.interface.js';
import type { DecryptOptions, EncryptOptions } from './interfaces/encryption-call-options.interface.js';
import type { EncryptionOperationEvent } from './interfaces/encryption-event.interface.js';
import type { ResolvedEncryptionOptions } from './interfaces/encryption-module-options.interface.js';
import type { StreamDecryptOptions, StreamEncryptOptions } from './interfaces/stream-options.interface.js';
import { KeyManagerService } from './key-manager.service.js';
import { CryptoWorkerPool } from './parallel/crypto-worker-pool.js';
import { StreamEncryption } from './streaming/stream-encryption.js';
import { isPromiseLike } from './utils/is-promise-like.js';

/**
 * Encrypts strings, bytes and JSON values into the self-describing envelope (docs/FORMAT.md) and
 * decrypts them back to the same type, with the key ring of `KeyManagerService`.
 */
@Injectable()
export class EncryptionService {
  private readonly cipher: AeadCipher;
  private readonly codec: CompressionCodec;
  private readonly fernet: FernetFormat;
  private readonly jwe: JweFormat;
  private readonly batch: BatchEncryption;
  private readonly streams: StreamEncryption;
  /** `algorithm: 'fernet'`: new ciphertexts are Fernet tokens. */
  private readonly makesFernet: boolean;

  constructor(
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
    private readonly keyManager: KeyManagerService,
    private readonly events: EncryptionEvents,
    private readonly auditor: EncryptionAuditor,
    private readonly pool: CryptoWorkerPool,
  ) {
    this.makesFernet = options.algorithm === 'fernet';
    this.cipher = aeadByName(options.algorithm === 'fernet' ? 'AES-256-GCM' : options.algorithm);
    this.codec = CODEC_BY_ALGORITHM[options.compressionAlgorithm];
    this.fernet = new FernetFormat(options, keyManager);
    this.jwe = new JweFormat(options, keyManager);
    const { cipher, codec, fernet, jwe } = this;
    this.batch = new BatchEncryption({ options, keyManager, events, auditor, pool, fernet, jwe, cipher, codec });
    this.streams = new StreamEncryption({ options, keyManager, events, auditor, cipher });
  }

  /**
   * A Transform that encrypts a byte stream of any size in constant memory, into the streaming format
   * (docs/FORMAT.md, "Streams"): chunks of `chunkSize` bytes, each authenticated, in an order that
   * can't be changed or cut short unnoticed. Uses the configured algorithm when it is AES-256-GCM or
   * ChaCha20-Poly1305, AES-256-GCM otherwise. `pipeline(source, encryption.createEncryptStream(), sink)`.
   */
  createEncryptStream(options?: StreamEncryptOptions): Transform {
    return this.streams.createEncryptStream(options);
  }

  /**
   * A Transform that decrypts the streaming format. Each chunk's plaintext is released once its tag
   * verifies; any tampering, reordering or truncation fails the stream with `DecryptionError` (an
   * unknown key id with `KeyNotFoundError`), so treat what was released as untrusted until the stream
   * ends without an error.
   */
  createDecryptStream(options?: StreamDecryptOptions): Transform {
    return this.streams.createDecryptStream(options);
  }

  /**
   * Encrypts every item (with the same options) in one call: the per-call work is done once, large
   * batches are spread over the worker pool, and one `batch` event reports the call. Results are in
   * input order, each `{ ok: true, value }` or `{ ok: false, error }` (the error `encrypt()` would throw);
   * with `failFast: true` the call resolves to the ciphertexts or rejects with the first item's error.
   */
  encryptMany(items: readonly Plaintext[], options: BatchEncryptOptions & { failFast: true }): Promise<Buffer[]>;
  encryptMany(items: readonly Plaintext[], options?: BatchEncryptOptions): Promise<BatchItemResult<Buffer>[]>;
  async encryptMany(items: readonly Plaintext[], options?: BatchEncryptOptions): Promise<BatchItemResult<Buffer>[] | Buffer[]> {
    const results = await this.batch.encryptMany(items, options);
    return options?.failFast ? results.map((result) => (result as { value: Buffer }).value) : results;
  }

  /**
   * Decrypts every item (with the same options) in one call, in any mix of formats and keys. Results
   * are in input order, each `{ ok: true, value }` or `{ ok: false, error }` (the error `decrypt()` would
   * throw); with `failFast: true` the call resolves to the plaintexts or rejects with the first item's error.
   */
  decryptMany<T extends Plaintext = Plaintext>(
    items: readonly (Buffer | Uint8Array | string)[],
    options: BatchDecryptOptions & { failFast: true },
  ): Promise<T[]>;
  decryptMany<T extends Plaintext = Plaintext>(
    items: readonly (Buffer | Uint8Array | string)[],
    options?: BatchDecryptOptions,
  ): Promise<BatchItemResult<T>[]>;
  async decryptMany(
    items: readonly (Buffer | Uint8Array | string)[],
    options?: BatchDecryptOptions,
  ): Promise<BatchItemResult<Plaintext>[] | Plaintext[]> {
    const results = await this.batch.decryptMany(items, options);
    return options?.failFast ? results.map((result) => (result as { value: Plaintext }).value) : results;
  }

  /** Encrypts to the binary envelope (with `algorithm: 'fernet'`, the binary Fernet token). */
  encrypt(data: Plaintext, options: EncryptOptions = {}): Promise<Buffer> {
    if (this.makesFernet) return this.encryptFernet(data, options).then((token) => Buffer.from(token, 'base64url'));
    return this.events.observed ? this.observe('encrypt', (stats) => this.seal(data, options, stats)) : settle(() => this.seal(data, options));
  }

  /**
   * Synchronous unless the payload goes to the worker pool or through compression: most calls then
   * cost one promise, not a chain of async frames.
   */
  private seal(data: Plaintext, options: EncryptOptions, stats?: OperationStats): Buffer | Promise<Buffer> {
    let encoded;
    try {
      encoded = encodePlaintext(data);
    } catch (error) {
      if (!(error instanceof UnencodableValueError)) throw error;
      throw new EncryptionInputError(
        error.message === 'non-finite number' ? MESSAGES.NON_FINITE_NUMBER : MESSAGES.UNSUPPORTED_PLAINTEXT(error.message),
      );
    }
    // Large payloads are compressed and sealed in a worker, off the event loop.
    if (this.pool.accepts(encoded.bytes.length)) return this.inPool(stats, (batch) => this.batch.sealOne(encoded, options, batch));
    const context = contextBytes(options.context);
    const explicitKey = options.key && this.explicitDataKey(options.key);
    if (this.compresses(encoded.bytes, options.compress)) {
      return compress(this.codec, encoded.bytes).then((compressed) =>
        compressed.length < encoded.bytes.length
          ? this.sealEncoded(encoded, this.codec, compressed, context, explicitKey, stats)
          : this.sealEncoded(encoded, CompressionCodec.None, encoded.bytes, context, explicitKey, stats),
      );
    }
    return this.sealEncoded(encoded, CompressionCodec.None, encoded.bytes, context, explicitKey, stats);
  }

  private sealEncoded(
    encoded: EncodedPlaintext,
    codec: CompressionCodec,
    bytes: Buffer,
    context: Buffer,
    explicitKey: DataKey | undefined,
    stats: OperationStats | undefined,
  ): Buffer {
    // Everything from key lookup to seal is synchronous, so a concurrent rotation can't interleave.
    const managed = explicitKey ? undefined : this.keyManager.activeKey;
    const dataKey = explicitKey ?? managed!.dataKey;
    const cipher = this.cipher;
    const nonce = randomNonce(cipher.nonceSize);
    const header = serializeHeader({
      cipher,
      payloadType: encoded.type,
      codec,
      keyId: dataKey.id,
      commitment: dataKey.commitment,
      nonce,
    });
    const aad = context.length ? Buffer.concat([header, context]) : header;
    // Sealed straight into the envelope: a large ciphertext is written once, not built and then copied.
    const body = cipher.ciphertextLength(bytes.length) + cipher.tagSize;
    const envelope = Buffer.allocUnsafe(header.length + body);
    header.copy(envelope);
    const written = cipher.sealInto(dataKey.cipherKey(cipher), nonce, bytes, aad, envelope, header.length);
    // allocUnsafe memory holds old heap bytes: never hand out an envelope that isn't fully written.
    if (written !== body) throw new Error(`${cipher.name} wrote ${written} bytes, expected ${body}`);
    if (managed) recordUse(managed, 'encryptions');
    if (stats) {
      stats.plaintextBytes = encoded.bytes.length;
      stats.ciphertextBytes = envelope.length;
      if (codec !== CompressionCodec.None) stats.compressionRatio = bytes.length / encoded.bytes.length;
    }
    return envelope;
  }

  /**
   * Encrypts to the text form: the envelope as unpadded base64url, safe in JSON and URLs (with
   * `algorithm: 'fernet'`, a standard Fernet token: url-safe base64 with padding).
   */
  encryptToString(data: Plaintext, options?: EncryptOptions): Promise<string> {
    if (this.makesFernet) return this.encryptFernet(data, options ?? {});
    return this.encrypt(data, options).then(toBase64Url);
  }

  /**
   * Encrypts to a public key as a standard compact JWE (RSA-OAEP-256 or ECDH-ES+A256KW, with A256GCM),
   * of any size. By default to this service's active key pair; `publicJwk` can be any RSA (2048 bits or
   * more), X25519 or P-256 public JWK. The protected header's `cty` records the type for `decrypt()`:
   * `json`, `text/plain;charset=utf-8` or `octet-stream`.
   */
  encryptForPublicKey(data: Plaintext, publicJwk?: JWK): Promise<string> {
    const run = (stats?: OperationStats) => {
      if (stats) stats.algorithm = 'JWE';
      return this.jwe.encrypt(data, publicJwk);
    };
    return this.events.observed ? this.observe('encrypt', run) : run();
  }

  /**
   * Python's `MultiFernet.rotate`: re-encrypts a Fernet token made with any usable ring key under the
   * active key, keeping its timestamp (so a TTL still counts from the first encryption). No TTL check.
   * Returns the form it was given (text or binary).
   */
  async rotateFernetToken<T extends string | Buffer>(token: T): Promise<T> {
    if (foreignFormatOf(token) !== 'fernet') throw new DecryptionError();
    const rotated = this.fernet.rotate(token);
    return (typeof token === 'string' ? rotated : Buffer.from(rotated, 'base64url')) as T;
  }

  /**
   * Decrypts either form back to the type that was encrypted. Any failure to authenticate is a
   * `DecryptionError` with one generic message; an unknown key id is its subclass `KeyNotFoundError`.
   * Also reads Fernet tokens (text or binary) and compact JWEs (see `DecryptOptions.as` for the type
   * they return): docs/FORMAT.md, "Other formats".
   */
  decrypt<T extends Plaintext = Plaintext>(input: Buffer | Uint8Array | string, options: DecryptOptions = {}): Promise<T> {
    const foreign = foreignFormatOf(input);
    if (foreign) return this.decryptForeign(foreign, input, options) as Promise<T>;
    return (
      this.events.observed ? this.observe('decrypt', (stats) => this.unseal(input, options, stats)) : this.unseal(input, options)
    ) as Promise<T>;
  }

  private unseal(input: Buffer | Uint8Array | string, options: DecryptOptions, stats?: OperationStats): Promise<Plaintext> {
    const failed = (error: unknown): never => {
      if (error instanceof DecryptionError) this.auditor.decryptionFailed();
      throw error;
    };
    try {
      const plaintext = this.unsealOrThrow(input, options, stats);
      return isPromiseLike(plaintext) ? Promise.resolve(plaintext).catch(failed) : Promise.resolve(plaintext);
    } catch (error) {
      return Promise.reject(error).catch(failed);
    }
  }

  /** Synchronous unless the payload goes to the worker pool, its key must be reloaded, or it was compressed. */
  private unsealOrThrow(
    input: Buffer | Uint8Array | string,
    options: DecryptOptions,
    stats?: OperationStats,
  ): Plaintext | Promise<Plaintext> {
    const bytes = toBytes(input);
    const envelope = parseEnvelope(bytes);
    if (!envelope) throw new DecryptionError();
    if (this.pool.accepts(envelope.ciphertext.length)) return this.inPool(stats, (batch) => this.batch.openOne(bytes, options, batch));
    const context = contextBytes(options.context);
    const plaintext = this.open(envelope, context, options.key, stats);
    if (plaintext) return this.finishUnseal(envelope, bytes.length, plaintext, options, stats);
    // Maybe another instance just made this key: reload (rate-limited) and look once more.
    return this.keyManager.reloadForUnknownKey().then(() => {
      const reloaded = this.open(envelope, context, options.key, stats);
      if (!reloaded) throw new KeyNotFoundError(envelope.keyId);
      return this.finishUnseal(envelope, bytes.length, reloaded, options, stats);
    });
  }

  /** Decompresses and decodes what `open` returned. */
  private finishUnseal(
    envelope: Envelope,
    envelopeLength: number,
    plaintext: Buffer,
    options: DecryptOptions,
    stats: OperationStats | undefined,
  ): Plaintext | Promise<Plaintext> {
    if (stats) stats.ciphertextBytes = envelopeLength;
    if (envelope.codec === CompressionCodec.None) {
      if (stats) stats.plaintextBytes = plaintext.length;
      return decodePlaintext(envelope.payloadType, plaintext);
    }
    if (options.decompress === false) return plaintext;
    const decoded = (decompressed: Buffer) => {
      if (stats) {
        stats.plaintextBytes = decompressed.length;
        stats.compressionRatio = plaintext.length / decompressed.length;
      }
      return decodePlaintext(envelope.payloadType, decompressed);
    };
    const decompressed = decompressPayload(envelope.codec, plaintext, this.options.maxDecompressedSize);
    return Buffer.isBuffer(decompressed) ? decoded(decompressed) : decompressed.then(decoded);
  }

  private encryptFernet(data: Plaintext, options: EncryptOptions): Promise<string> {
    const run = async (stats?: OperationStats) => {
      if (stats) stats.algorithm = 'fernet';
      return this.fernet.encrypt(data, options);
    };
    return this.events.observed ? this.observe('encrypt', run) : run();
  }

  private decryptForeign(format: ForeignFormat, input: Buffer | Uint8Array | string, options: DecryptOptions): Promise<Plaintext> {
    const run = async (stats?: OperationStats) => {
      if (stats) stats.algorithm = format === 'jwe' ? 'JWE' : 'fernet';
      checkUntypedAs(options.as);
      try {
        return format === 'jwe'
          ? await this.jwe.decrypt(input as string, options)
          : decodeForeignPayload(await this.fernet.decrypt(input, options), undefined, options.as);
      } catch (error) {
        if (error instanceof DecryptionError) this.auditor.decryptionFailed();
        throw error;
      }
    };
    return this.events.observed ? this.observe('decrypt', run) : run();
  }

  /** Times one operation and reports it to event subscribers, success or failure. */
  private observe<T>(operation: 'encrypt' | 'decrypt', run: (stats: OperationStats) => T | Promise<T>): Promise<T> {
    const stats: OperationStats = {};
    const start = performance.now();
    const report = (result: 'success' | 'failure', errorCode?: string) =>
      this.events.emit({
        type: 'operation',
        operation,
        algorithm: stats.algorithm ?? (operation === 'encrypt' ? this.cipher.name : 'unknown'),
        result,
        errorCode,
        durationSeconds: (performance.now() - start) / 1000,
        ...stats,
      });
    return settle(() => run(stats)).then(
      (value) => {
        report('success');
        return value;
      },
      (error: unknown) => {
        report('failure', error instanceof EncryptionError ? error.code : 'INTERNAL');
        throw error;
      },
    );
  }

  /** The plaintext, or `undefined` when no loaded key has the envelope's key id. */
  private open(envelope: Envelope, context: Buffer, explicitKey: Buffer | undefined, stats?: OperationStats): Buffer | undefined {
    if (stats) stats.algorithm = envelope.cipher.name;
    const aad = context.length ? Buffer.concat([envelope.header, context]) : envelope.header;
    if (explicitKey) {
      const dataKey = this.explicitDataKey(explicitKey);
      if (timingSafeEqual(dataKey.commitment, envelope.commitment)) return openWith(envelope, dataKey, aad);
      // The given key didn't make this ciphertext: fall back to the ring by the stored key id.
      if (stats) stats.keyFallback = true;
    }
    const managed = this.keyManager.findKey(envelope.keyId);
    if (!managed) return undefined;
    if (!managed.dataKey) throw new KeyRetiredError(envelope.keyId);
    if (!timingSafeEqual(managed.dataKey.commitment, envelope.commitment)) throw new DecryptionError();
    const plaintext = openWith(envelope, managed.dataKey, aad);
    recordUse(managed, 'decryptions');
    return plaintext;
  }

  /** One payload through the batch path (and so the worker pool), its stats copied to this call's event. */
  private async inPool<T>(stats: OperationStats | undefined, run: (batch: BatchStats) => Promise<T>): Promise<T> {
    const batch = newStats();
    const value = await run(batch);
    if (stats) {
      stats.algorithm = [...batch.algorithms][0];
      stats.plaintextBytes = batch.plaintextBytes;
      stats.ciphertextBytes = batch.ciphertextBytes;
      if (batch.compressedItems) stats.compressionRatio = batch.compressionRatioSum;
      if (batch.keyFallbacks) stats.keyFallback = true;
    }
    return value;
  }

  private explicitDataKey(key: Buffer): DataKey {
    if (!Buffer.isBuffer(key) || key.length < this.options.keySize) {
      throw new EncryptionInputError(MESSAGES.INVALID_EXPLICIT_KEY(this.options.keySize));
    }
    return new DataKey(explicitKeyId(key), key);
  }

  private compresses(bytes: Buffer, override: boolean | undefined): boolean {
    return (override ?? this.options.enableCompression) && bytes.length > 0 && bytes.length >= this.options.compressionThreshold;
  }

}

type OperationStats = Partial<
  Pick<EncryptionOperationEvent, 'plaintextBytes' | 'ciphertextBytes' | 'compressionRatio' | 'keyFallback' | 'algorithm'>
>;

/** A step that is usually synchronous, as a promise either way (a synchronous throw becomes a rejection). */
function settle<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

const toBase64Url = (envelope: Buffer): string => envelope.toString('base64url');

function openWith(envelope: Envelope, dataKey: DataKey, aad: Buffer): Buffer {
  try {
    return envelope.cipher.open(dataKey.cipherKey(envelope.cipher), envelope.nonce, envelope.ciphertext, envelope.tag, aad);
  } catch (error) {
    throw new DecryptionError(undefined, undefined, { cause: error });
  }
}

function recordUse(key: ManagedKey, counter: 'encryptions' | 'decryptions'): void {
  key.usage[counter]++;
  key.usage.lastUsedAt = Date.now();
}
