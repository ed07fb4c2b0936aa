import { randomFillSync, timingSafeEqual } from 'node:crypto';

import type { AeadCipher } from '../crypto/aead.js';
import { checkUntypedAs, decodeForeignPayload, foreignFormatOf } from '../crypto/ciphertext-format.js';
import { ASYNC_COMPRESSION_THRESHOLD, compress, decompressPayload } from '../crypto/compression.js';
import { DataKey, explicitKeyId } from '../crypto/data-key.js';
import type { Envelope } from '../crypto/envelope.js';
import { CompressionCodec, parseEnvelope, serializeHeader } from '../crypto/envelope.js';
import { ciphertextBytes, contextBytes } from '../crypto/envelope-input.js';
import type { ManagedKey } from '../crypto/key-ring.js';
import type { EncodedPlaintext, Plaintext } from '../crypto/plaintext-codec.js';
import { decodePlaintext } from '../crypto/plaintext-codec.js';
import type { EncryptionAuditor } from '../encryption-audit.service.js';
import type { EncryptionEvents } from '../encryption-events.service.js';
import {
  DecryptionError,
  EncryptionError,
  EncryptionInputError,
  KeyNotFoundError,
  KeyRetiredError,
} from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { FernetFormat } from '../formats/fernet.format.js';
import { encodeInput } from '../formats/format.utils.js';
import type { JweFormat } from '../formats/jwe.format.js';
import type { BatchDecryptOptions, BatchEncryptOptions, BatchItemResult } from '../interfaces/batch-options.interface.js';
import type { DecryptOptions, EncryptOptions } from '../interfaces/encryption-call-options.interface.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { KeyManagerService } from '../key-manager.service.js';
import type { CryptoWorkerPool } from '../parallel/crypto-worker-pool.js';
import type { SealParameters } from '../parallel/seal-job.js';
import { compressAll, sealAll } from '../parallel/seal-job.js';
import { runShared } from '../parallel/shared-work.js';
import { isPromiseLike } from '../utils/is-promise-like.js';
import { BatchPlaintexts } from './batch-plaintexts.js';

/**
 * A worker task of a batch takes items up to about this many bytes: few hand-offs, each worth its cost.
 * Interleaved in one process (64 x 1 MiB batches, three runs), tasks of up to 16 MiB, one at a time
 * per thread, took about 10% less CPU time per payload than tasks of 4 MiB, two per thread: less
 * JavaScript per payload, and V8 marks the heap less often when results arrive in fewer, larger pieces.
 */
const TASK_BYTES = 16 * 1024 * 1024;
/** The largest task of items this thread has to encode first (JSON, strings): see `sealInPool`. */
const ENCODED_TASK_BYTES = 512 * 1024;
/** Items of a batch of JSON values or strings encoded to estimate its size (`sealEncoded`). */
const SAMPLED_ITEMS = 64;
/** Towards the end of a batch, tasks shrink down to this (or one item), so small items still share a hand-off. */
const MIN_TASK_BYTES = 256 * 1024;
/** The calling thread seals about this many bytes of a batch per turn of the event loop. */
const HERE_BYTES = 256 * 1024;

/** What one batch did, for its single event (and for `encrypt()`/`decrypt()` when they delegate here). */
export interface BatchStats {
  algorithms: Set<string>;
  succeeded: number;
  failed: number;
  errorCodes: Record<string, number>;
  plaintextBytes: number;
  ciphertextBytes: number;
  /** Sum of compressed sizes over original sizes of compressed items, and their count. */
  compressedItems: number;
  compressionRatioSum: number;
  /** Items whose explicit key didn't match, so the ring's key by id was used. */
  keyFallbacks: number;
}

/** The services' collaborators a batch uses; `EncryptionService` hands over its own. */
export interface BatchCollaborators {
  options: ResolvedEncryptionOptions;
  keyManager: KeyManagerService;
  events: EncryptionEvents;
  auditor: EncryptionAuditor;
  pool: CryptoWorkerPool;
  fernet: FernetFormat;
  jwe: JweFormat;
  cipher: AeadCipher;
  codec: CompressionCodec;
}

/** A large envelope waiting to be opened in the pool. */
interface PooledOpen {
  envelope: Envelope;
  dataKey: DataKey;
  aad: Buffer;
  resolve(plaintext: Buffer): void;
  reject(error: unknown): void;
}

/** An envelope whose key id no loaded key has: retried once after a ring reload. */
const UNKNOWN_KEY = Symbol('unknown key');

/**
 * `encryptMany()` / `decryptMany()` for `EncryptionService`: every item of one call shares the
 * per-call work (context encoding, the explicit key's derivation, the active key lookup, the header,
 * one CSPRNG draw for all nonces, key lookups by id, usage counting, one event), and large batches go
 * to the worker pool. Also seals and opens single large payloads in the pool for `encrypt()`/`decrypt()`.
 */
export class BatchEncryption {
  constructor(private readonly c: BatchCollaborators) {}

  async encryptMany(items: readonly Plaintext[], options: BatchEncryptOptions = {}): Promise<BatchItemResult<Buffer>[]> {
    assertArray(items);
    return this.observed('encrypt', async (stats) => firstFailure(await this.encryptItems(items, options, options.failFast === true, stats), options.failFast));
  }

  async decryptMany(items: readonly (Buffer | Uint8Array | string)[], options: BatchDecryptOptions = {}): Promise<BatchItemResult<Plaintext>[]> {
    assertArray(items);
    return this.observed('decrypt', async (stats) => firstFailure(await this.decryptItems(items, options, options.failFast === true, stats), options.failFast));
  }

  /** Encrypts one encoded payload in the pool (the caller checked `pool.accepts`); no event of its own. */
  async sealOne(encoded: EncodedPlaintext, options: EncryptOptions, stats?: BatchStats): Promise<Buffer> {
    const own = stats ?? newStats();
    const plaintexts = new BatchPlaintexts(1, () => encoded, () => undefined, false);
    const [result] = await this.sealEncoded(plaintexts, options, own, new Array(1));
    if (!result.ok) throw result.error;
    return result.value;
  }

  /** Decrypts one native envelope (opening it in the pool when it is large); no event of its own. */
  async openOne(input: Buffer | Uint8Array | string, options: DecryptOptions, stats?: BatchStats): Promise<Plaintext> {
    // Not audited here: `decrypt()` reports its own failures.
    const [result] = await this.decryptItems([input], options, false, stats ?? newStats(), false);
    if (!result.ok) throw result.error;
    return result.value;
  }

  // --- encryption -----------------------------------------------------------------------------

  private async encryptItems(
    items: readonly Plaintext[],
    options: EncryptOptions,
    failFast: boolean,
    stats: BatchStats,
  ): Promise<BatchItemResult<Buffer>[]> {
    const results: BatchItemResult<Buffer>[] = new Array(items.length);
    if (this.c.options.algorithm === 'fernet') return this.encryptFernet(items, options, failFast, stats, results);
    stats.algorithms.add(this.c.cipher.name);
    const onFailure = (index: number, error: unknown) => {
      results[index] = failure(error, stats);
      if (failFast) throw error;
    };
    // JSON and strings cost an encoding each; bytes (and so batches that mix them in) are encoded first.
    const lazy = !items.some((item) => item instanceof Uint8Array);
    const plaintexts = new BatchPlaintexts(items.length, (index) => encodeInput(items[index]), onFailure, lazy);
    return this.sealEncoded(plaintexts, options, stats, results);
  }

  private async sealEncoded(
    plaintexts: BatchPlaintexts,
    options: EncryptOptions,
    stats: BatchStats,
    results: BatchItemResult<Buffer>[],
  ): Promise<BatchItemResult<Buffer>[]> {
    const context = contextBytes(options.context);
    const explicitKey = options.key === undefined ? undefined : this.explicitDataKey(options.key);
    const enabled = options.compress ?? this.c.options.enableCompression;
    const compression = { codec: enabled ? this.c.codec : CompressionCodec.None, threshold: this.c.options.compressionThreshold };
    const pool = this.c.pool;
    // Whether the batch goes to the pool: from its total, or for a batch encoded as the work reaches it,
    // from its first items (their average standing for the rest), exactly once all are encoded.
    plaintexts.encodeTo(plaintexts.lazy ? Math.min(plaintexts.length, SAMPLED_ITEMS) : plaintexts.length);
    let pooled = plaintexts.length > 0 && pool.accepts(plaintexts.estimate(0, plaintexts.length));
    if (!pooled && !plaintexts.allEncoded) pooled = pool.accepts(plaintexts.encodeTo(plaintexts.length).byteLength);

    // Synchronous from key lookup to the nonces, so a concurrent rotation can't mix keys within a batch.
    const managed = explicitKey ? undefined : this.c.keyManager.activeKey;
    const dataKey = explicitKey ?? managed!.dataKey;
    const cipher = this.c.cipher;
    const parameters: SealParameters = {
      cipherId: cipher.id,
      key: dataKey.cipherKey(cipher),
      headerTemplate: serializeHeader({
        cipher,
        payloadType: 0,
        codec: CompressionCodec.None,
        keyId: dataKey.id,
        commitment: dataKey.commitment,
        nonce: Buffer.alloc(cipher.nonceSize),
      }),
      context,
      // One CSPRNG draw for the whole batch; each nonce is its own slice, used once.
      nonces: plaintexts.length ? randomFillSync(Buffer.allocUnsafeSlow(plaintexts.length * cipher.nonceSize)) : Buffer.alloc(0),
      // Filled in as items are encoded, before each is sealed.
      types: plaintexts.types,
    };

    let envelopes: Buffer[];
    let sealedLengths: ArrayLike<number>;
    if (pooled) {
      ({ envelopes, sealedLengths } = await this.sealInPool(parameters, compression, plaintexts));
    } else {
      const { bytes, codecs } = await compressHere(compression, plaintexts.bytes);
      envelopes = sealAll(parameters, bytes, codecs);
      sealedLengths = bytes.map((item) => item.length);
    }
    let sealed = 0;
    for (let k = 0; k < envelopes.length; k++) {
      if (plaintexts.failed[k]) continue; // a placeholder: the item's failure is its result
      sealed++;
      results[k] = { ok: true, value: envelopes[k] };
      stats.succeeded++;
      stats.plaintextBytes += plaintexts.bytes[k].length;
      stats.ciphertextBytes += envelopes[k].length;
      if (sealedLengths[k] !== plaintexts.bytes[k].length) {
        stats.compressedItems++;
        stats.compressionRatioSum += sealedLengths[k] / plaintexts.bytes[k].length;
      }
    }
    if (managed) {
      managed.usage.encryptions += sealed;
      if (sealed) managed.usage.lastUsedAt = Date.now();
    }
    return results;
  }

  /**
   * Shares the batch between the workers, in tasks of several items (`taskEnd`), and this thread.
   * A batch of JSON values or strings is encoded here as tasks take it, in input order, so the
   * workers seal the first tasks while this thread encodes the next (encoding costs about what
   * sealing does). A batch encoded up front (bytes) is shared the other way: this thread seals items
   * smaller than the pool's threshold from the back, about `HERE_BYTES` per turn of the event loop
   * (`runShared`).
   */
  private async sealInPool(
    parameters: SealParameters,
    compression: { codec: CompressionCodec; threshold: number },
    plaintexts: BatchPlaintexts,
  ): Promise<{ envelopes: Buffer[]; sealedLengths: number[] }> {
    const nonceSize = this.c.cipher.nonceSize;
    const pool = this.c.pool;
    const sealHere = plaintexts.allEncoded;
    // Encoding here: one task more than the threads take, so this thread encodes the next task while
    // they seal, and smaller tasks, so the first one leaves sooner.
    const lanes = sealHere ? pool.capacity : pool.capacity + 1;
    const taskBytes = sealHere ? TASK_BYTES : ENCODED_TASK_BYTES;
    const range = (start: number, end: number): SealParameters => ({
      ...parameters,
      nonces: parameters.nonces.subarray(start * nonceSize, end * nonceSize),
      types: parameters.types.subarray(start, end),
    });
    const sealed = await runShared<{ envelope: Buffer; sealedLength: number }>({
      items: plaintexts.length,
      lanes,
      taskEnd: (start, end) => {
        // Large tasks while much is left (few hand-offs), smaller ones towards the end, so no worker
        // is left with a long queue when the others run dry (guided scheduling).
        const target = Math.min(taskBytes, Math.max(MIN_TASK_BYTES, plaintexts.estimate(start, end) / (2 * lanes)));
        let stop = start + 1;
        let bytes = plaintexts.at(start).length;
        while (stop < end && bytes < target) bytes += plaintexts.at(stop++).length;
        return stop;
      },
      offload: async (start, end) => {
        const { envelopes, sealedLengths } = await pool.seal(range(start, end), compression, plaintexts.bytes.slice(start, end));
        return envelopes.map((envelope, i) => ({ envelope, sealedLength: sealedLengths[i] }));
      },
      ...(sealHere && {
        hereStart: (start: number, end: number) => {
          let from = end;
          while (from > start && plaintexts.bytes[from - 1].length < pool.threshold && plaintexts.estimate(from, end) < HERE_BYTES) from--;
          return from;
        },
        runHere: async (start: number, end: number) => {
          const { bytes, codecs } = await compressHere(compression, plaintexts.bytes.slice(start, end));
          return sealAll(range(start, end), bytes, codecs).map((envelope, i) => ({ envelope, sealedLength: bytes[i].length }));
        },
      }),
    });
    return { envelopes: sealed.map((item) => item.envelope), sealedLengths: sealed.map((item) => item.sealedLength) };
  }

  private async encryptFernet(
    items: readonly Plaintext[],
    options: EncryptOptions,
    failFast: boolean,
    stats: BatchStats,
    results: BatchItemResult<Buffer>[],
  ): Promise<BatchItemResult<Buffer>[]> {
    stats.algorithms.add('fernet');
    for (let i = 0; i < items.length; i++) {
      try {
        const token = Buffer.from(this.c.fernet.encrypt(items[i], options), 'base64url');
        results[i] = { ok: true, value: token };
        stats.succeeded++;
        stats.ciphertextBytes += token.length;
      } catch (error) {
        results[i] = failure(error, stats);
        if (failFast) throw error;
      }
    }
    return results;
  }

  // --- decryption -----------------------------------------------------------------------------

  private async decryptItems(
    items: readonly (Buffer | Uint8Array | string)[],
    options: DecryptOptions,
    failFast: boolean,
    stats: BatchStats,
    audit = true,
  ): Promise<BatchItemResult<Plaintext>[]> {
    const context = contextBytes(options.context);
    const explicitKey = options.key === undefined ? undefined : this.explicitDataKey(options.key);
    const results: BatchItemResult<Plaintext>[] = new Array(items.length);
    const pending: Promise<void>[] = [];
    const unknown: { index: number; envelope: Envelope; size: number }[] = [];
    const keys = new Map<string, ManagedKey | undefined>();
    const used = new Map<ManagedKey, number>();
    // failFast: no new work starts past the first failure found so far.
    let stopAt = items.length;

    const settle = (index: number, size: number, run: () => Plaintext | Promise<Plaintext> | typeof UNKNOWN_KEY): void => {
      const done = (value: Plaintext) => {
        results[index] = { ok: true, value };
        stats.succeeded++;
        stats.ciphertextBytes += size;
      };
      const fail = (error: unknown) => {
        if (audit && error instanceof DecryptionError) this.c.auditor.decryptionFailed();
        results[index] = failure(error, stats);
        if (failFast) stopAt = Math.min(stopAt, index);
      };
      try {
        const value = run();
        if (value === UNKNOWN_KEY) return;
        if (isPromiseLike(value)) pending.push(Promise.resolve(value).then(done, fail));
        else done(value);
      } catch (error) {
        fail(error);
      }
    };

    // Envelopes of at least the pool's threshold are collected and opened in the workers (`openShared`).
    // Smaller ones open here even in a large batch: handing 64 x 1 MiB to the workers (and the calling
    // thread) measured 0.38 of a bare loop against 0.58-0.62 here, on 2 busy cores.
    const toOpen: PooledOpen[] = [];
    const openNative = (envelope: Envelope, dataKey: DataKey): Plaintext | Promise<Plaintext> => {
      stats.algorithms.add(envelope.cipher.name);
      const aad = context.length ? Buffer.concat([envelope.header, context]) : envelope.header;
      if (this.c.pool.accepts(envelope.ciphertext.length)) {
        return new Promise<Buffer>((resolve, reject) => toOpen.push({ envelope, dataKey, aad, resolve, reject })).then((plaintext) =>
          this.finish(envelope, plaintext, options, stats),
        );
      }
      return this.finish(envelope, openWith(envelope, dataKey, aad), options, stats);
    };
    const openCollected = () => {
      if (toOpen.length) pending.push(this.openShared(toOpen.splice(0)));
    };

    /** The key for an envelope: the explicit one when its commitment matches, else the ring's by id. */
    const keyFor = (envelope: Envelope): DataKey | undefined => {
      if (explicitKey) {
        if (timingSafeEqual(explicitKey.commitment, envelope.commitment)) return explicitKey;
        stats.keyFallbacks++;
      }
      if (!keys.has(envelope.keyId)) keys.set(envelope.keyId, this.c.keyManager.findKey(envelope.keyId));
      const managed = keys.get(envelope.keyId);
      if (!managed) return undefined;
      if (!managed.dataKey) throw new KeyRetiredError(envelope.keyId);
      if (!timingSafeEqual(managed.dataKey.commitment, envelope.commitment)) throw new DecryptionError();
      used.set(managed, (used.get(managed) ?? 0) + 1);
      return managed.dataKey;
    };

    for (let i = 0; i < items.length && i < stopAt; i++) {
      const input = items[i];
      const foreign = foreignFormatOf(input);
      if (foreign) {
        stats.algorithms.add(foreign === 'jwe' ? 'JWE' : 'fernet');
        settle(i, byteSize(input), () => this.decryptForeign(foreign, input, options));
        continue;
      }
      settle(i, byteSize(input), () => {
        const bytes = ciphertextBytes(input);
        const envelope = parseEnvelope(bytes);
        if (!envelope) throw new DecryptionError();
        const dataKey = keyFor(envelope);
        if (dataKey) return openNative(envelope, dataKey);
        unknown.push({ index: i, envelope, size: bytes.length });
        return UNKNOWN_KEY;
      });
    }

    openCollected();
    if (unknown.length && unknown[0].index < stopAt) {
      // Maybe another instance just made these keys: reload (rate-limited) once for the whole batch.
      await this.c.keyManager.reloadForUnknownKey();
      keys.clear();
      for (const { index, envelope, size } of unknown) {
        if (index >= stopAt) break;
        settle(index, size, () => {
          const dataKey = keyFor(envelope);
          if (!dataKey) throw new KeyNotFoundError(envelope.keyId);
          return openNative(envelope, dataKey);
        });
      }
    }
    openCollected();
    await Promise.all(pending);

    const now = Date.now();
    for (const [managed, count] of used) {
      managed.usage.decryptions += count;
      managed.usage.lastUsedAt = now;
    }
    return results;
  }

  /**
   * Opens `jobs` (envelopes of at least the pool's threshold) on the workers, as many at a time as
   * they take (`runShared`). Each job settles on its own: one that doesn't verify fails its item only.
   */
  private async openShared(jobs: readonly PooledOpen[]): Promise<void> {
    await runShared<void>({
      items: jobs.length,
      lanes: this.c.pool.capacity,
      // One job per task (no taskEnd): a task's start is its job.
      offload: async (start) => {
        const { envelope, dataKey, aad, resolve, reject } = jobs[start];
        return [await this.openInPool(envelope, dataKey, aad).then(resolve, reject)];
      },
    });
  }

  private async openInPool(envelope: Envelope, dataKey: DataKey, aad: Buffer): Promise<Buffer> {
    try {
      return await this.c.pool.open({
        cipherId: envelope.cipher.id,
        key: dataKey.cipherKey(envelope.cipher),
        nonce: envelope.nonce,
        ciphertext: envelope.ciphertext,
        tag: envelope.tag,
        aad,
      });
    } catch (error) {
      throw new DecryptionError(undefined, undefined, { cause: error });
    }
  }

  /** Decompression (bounded) and decoding of an authenticated payload. */
  private finish(envelope: Envelope, plaintext: Buffer, options: DecryptOptions, stats: BatchStats): Plaintext | Promise<Plaintext> {
    if (envelope.codec === CompressionCodec.None) {
      stats.plaintextBytes += plaintext.length;
      return decodePlaintext(envelope.payloadType, plaintext);
    }
    if (options.decompress === false) return plaintext;
    const decoded = (decompressed: Buffer) => {
      stats.plaintextBytes += decompressed.length;
      stats.compressedItems++;
      stats.compressionRatioSum += plaintext.length / decompressed.length;
      return decodePlaintext(envelope.payloadType, decompressed);
    };
    // Small payloads decompress right here, without a promise per item.
    const decompressed = decompressPayload(envelope.codec, plaintext, this.c.options.maxDecompressedSize);
    return Buffer.isBuffer(decompressed) ? decoded(decompressed) : decompressed.then(decoded);
  }

  private async decryptForeign(format: 'fernet' | 'jwe', input: Buffer | Uint8Array | string, options: DecryptOptions): Promise<Plaintext> {
    checkUntypedAs(options.as);
    return format === 'jwe'
      ? this.c.jwe.decrypt(input as string, options)
      : decodeForeignPayload(await this.c.fernet.decrypt(input, options), undefined, options.as);
  }

  // --- shared ---------------------------------------------------------------------------------

  private explicitDataKey(key: Buffer): DataKey {
    if (!Buffer.isBuffer(key) || key.length < this.c.options.keySize) {
      throw new EncryptionInputError(MESSAGES.INVALID_EXPLICIT_KEY(this.c.options.keySize));
    }
    return new DataKey(explicitKeyId(key), key);
  }

  /** Runs a batch and reports it as one event (when anyone listens), success or not. */
  private async observed<T>(operation: 'encrypt' | 'decrypt', run: (stats: BatchStats) => Promise<BatchItemResult<T>[]>): Promise<BatchItemResult<T>[]> {
    const stats = newStats();
    const start = performance.now();
    try {
      return await run(stats);
    } finally {
      if (this.c.events.observed) {
        this.c.events.emit({
          type: 'batch',
          operation,
          algorithm: stats.algorithms.size === 1 ? [...stats.algorithms][0] : stats.algorithms.size ? 'mixed' : 'unknown',
          items: stats.succeeded + stats.failed,
          succeeded: stats.succeeded,
          failed: stats.failed,
          errorCodes: stats.errorCodes,
          durationSeconds: (performance.now() - start) / 1000,
          plaintextBytes: stats.plaintextBytes,
          ciphertextBytes: stats.ciphertextBytes,
        });
      }
    }
  }
}

export function newStats(): BatchStats {
  return {
    algorithms: new Set(),
    succeeded: 0,
    failed: 0,
    errorCodes: {},
    plaintextBytes: 0,
    ciphertextBytes: 0,
    compressedItems: 0,
    compressionRatioSum: 0,
    keyFallbacks: 0,
  };
}

/** failFast: the first failing item's own error, in input order; otherwise the settled results. */
function firstFailure<T>(results: BatchItemResult<T>[], failFast: boolean | undefined): BatchItemResult<T>[] {
  if (failFast) {
    for (const result of results) if (result && !result.ok) throw result.error;
  }
  return results;
}

function failure(error: unknown, stats: BatchStats): { ok: false; error: Error } {
  const code = error instanceof EncryptionError ? error.code : 'INTERNAL';
  stats.failed++;
  stats.errorCodes[code] = (stats.errorCodes[code] ?? 0) + 1;
  return { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
}

function openWith(envelope: Envelope, dataKey: DataKey, aad: Buffer): Buffer {
  try {
    return envelope.cipher.open(dataKey.cipherKey(envelope.cipher), envelope.nonce, envelope.ciphertext, envelope.tag, aad);
  } catch (error) {
    throw new DecryptionError(undefined, undefined, { cause: error });
  }
}

/** Small payloads compress here and now; large ones on libuv's threads, all at once. */
async function compressHere(
  compression: { codec: CompressionCodec; threshold: number },
  plaintexts: readonly Buffer[],
): Promise<{ bytes: Buffer[]; codecs: Uint8Array }> {
  const large = (bytes: Buffer) => bytes.length >= ASYNC_COMPRESSION_THRESHOLD;
  const small = compressAll(compression.codec, compression.threshold, plaintexts.map((b) => (large(b) ? Buffer.alloc(0) : b)));
  const bytes = plaintexts.map((b, i) => (large(b) ? b : small.bytes[i]));
  const codecs = small.codecs;
  if (compression.codec !== CompressionCodec.None) {
    await Promise.all(
      plaintexts.map(async (b, i) => {
        if (!large(b)) return;
        const compressed = await compress(compression.codec, b);
        if (compressed.length < b.length) {
          bytes[i] = compressed;
          codecs[i] = compression.codec;
        }
      }),
    );
  }
  return { bytes, codecs };
}

function assertArray(items: unknown): void {
  if (!Array.isArray(items)) throw new EncryptionInputError(MESSAGES.BATCH_NOT_AN_ARRAY);
}

/** Binary size of a ciphertext, from its text form when given as text. */
function byteSize(input: unknown): number {
  return typeof input === 'string' ? Math.floor((input.length * 3) / 4) : input instanceof Uint8Array ? input.length : 0;
}
