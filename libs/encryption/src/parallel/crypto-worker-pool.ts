import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { OnModuleDestroy } from '@nestjs/common';
import { Injectable, Logger } from '@nestjs/common';
import { Piscina } from 'piscina';

import type { CompressionCodec } from '../crypto/envelope.js';
import { InjectEncryptionOptions } from '../decorators/inject-encryption-options.decorator.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { CryptoTask } from './crypto.worker.js';
import type { OpenJob, PackedEnvelopes, SealParameters } from './seal-job.js';
import { compressAll, runOpenJob, sealAll, unpack } from './seal-job.js';
import { StagingArea } from './staging-area.js';

/**
 * The worker file beside this module: `dist/parallel/crypto.worker.js` in the built library. When it
 * isn't there (the TypeScript sources run directly, e.g. under ts-node or Jest, or a bundler inlined
 * this module), the pool is unavailable and the work runs on the calling thread instead.
 */
const WORKER_URL = new URL('./crypto.worker.js', import.meta.url);

/**
 * Worker threads (piscina) for large payloads, so sealing and opening them (and compressing them
 * first) doesn't hold the event loop, and a batch of large payloads uses every core. Started on first
 * use (an app that never sees a large payload never pays for threads), closed with the module. A task
 * carries the derived cipher key of one algorithm, never a data key or the master key; inputs go in
 * through reused shared memory (`StagingArea`) and results come back as transferred buffers.
 */
@Injectable()
export class CryptoWorkerPool implements OnModuleDestroy {
  private readonly logger = new Logger(CryptoWorkerPool.name);
  private pool?: Piscina;
  private available: boolean;
  private closed = false;
  private readonly staging: StagingArea;

  constructor(@InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions) {
    this.available = options.workerPool.size > 0;
    this.staging = new StagingArea(STAGING_BYTES);
  }

  /** Payloads (and batches) of at least this many bytes go to the pool when it is available. */
  get threshold(): number {
    return this.options.workerPool.threshold;
  }

  /** Whether work of `bytes` bytes should go to a worker. */
  accepts(bytes: number): boolean {
    return this.available && !this.closed && bytes >= this.options.workerPool.threshold && this.start();
  }

  /** Tasks the worker threads have finished (0 before the pool starts): for tests and diagnostics. */
  get completedTasks(): number {
    return this.pool?.completed ?? 0;
  }

  /** Number of worker threads (0 when disabled or unavailable). */
  get size(): number {
    return this.available ? this.options.workerPool.size : 0;
  }

  /** Tasks the threads take at once: a caller that keeps this many in flight leaves no thread idle. */
  get capacity(): number {
    return this.size * TASKS_PER_THREAD;
  }

  /**
   * Compresses (where `codec` is set and it helps) and seals `plaintexts` in one worker, or here when
   * the pool can't be used. Returns the envelopes and the bytes each one encrypted.
   */
  async seal(
    parameters: SealParameters,
    compression: { codec: CompressionCodec; threshold: number },
    plaintexts: readonly Buffer[],
  ): Promise<{ envelopes: Buffer[]; sealedLengths: Uint32Array }> {
    const pool = this.pool;
    if (!pool || this.closed) {
      const { bytes, codecs } = compressAll(compression.codec, compression.threshold, plaintexts);
      return { envelopes: sealAll(parameters, bytes, codecs), sealedLengths: Uint32Array.from(bytes, (item) => item.length) };
    }
    const { data, lengths } = this.staging.stage(plaintexts);
    const key = exact(parameters.key);
    const task: CryptoTask = {
      kind: 'seal',
      cipherId: parameters.cipherId,
      key,
      headerTemplate: exact(parameters.headerTemplate),
      context: exact(parameters.context),
      nonces: exact(parameters.nonces),
      types: exact(parameters.types),
      codec: compression.codec,
      compressionThreshold: compression.threshold,
      data,
      lengths,
    };
    let output: PackedEnvelopes;
    try {
      output = (await pool.run(task)) as PackedEnvelopes;
    } catch (error) {
      this.staging.release(data); // the worker may not have reached its wipe
      throw error;
    } finally {
      key.fill(0);
    }
    this.staging.release(data, { wipe: false }); // the worker wiped the plaintexts (crypto.worker.ts)
    return { envelopes: unpack(output.buffers, output.lengths), sealedLengths: output.sealedLengths };
  }

  /** Opens one envelope in a worker (or here); rejects when the tag doesn't verify. */
  async open(job: OpenJob): Promise<Buffer> {
    const pool = this.pool;
    if (!pool || this.closed) return runOpenJob(job);
    const ciphertext = this.staging.stage([job.ciphertext]).data;
    const key = exact(job.key);
    const task: CryptoTask = { kind: 'open', key, nonce: exact(job.nonce), tag: exact(job.tag), aad: exact(job.aad), ciphertext, cipherId: job.cipherId };
    let plaintext: Uint8Array;
    try {
      plaintext = (await pool.run(task)) as Uint8Array;
    } finally {
      key.fill(0);
      this.staging.release(ciphertext, { wipe: false }); // a ciphertext: nothing secret to wipe
    }
    return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
    this.staging.clear();
  }

  /** Starts the threads on first use; false when the worker file can't be found. */
  private start(): boolean {
    if (this.pool) return true;
    const filename = fileURLToPath(WORKER_URL);
    if (!existsSync(filename)) {
      this.available = false;
      this.logger.warn(`The worker file ${filename} is missing, so large payloads are encrypted on the main thread`);
      return false;
    }
    const size = this.options.workerPool.size;
    this.pool = new Piscina({ filename, minThreads: size, maxThreads: size, idleTimeout: 30_000, concurrentTasksPerWorker: TASKS_PER_THREAD });
    return true;
  }
}

/**
 * Tasks a thread is handed at once. A batch's tasks carry many payloads (up to 16 MiB,
 * `batch-encryption.ts`), so one keeps a thread busy for milliseconds, and the calling thread hands
 * it the next one between its own payloads; a second one queued measured slower (tasks of 16 MiB,
 * 64 x 1 MiB: 1.42 times a bare loop's rate against 1.62, interleaved in one process).
 */
const TASKS_PER_THREAD = 1;

/**
 * Shared memory kept for task inputs between tasks (`StagingArea`): the tasks in flight of a 64 MiB
 * batch (about half of it, whatever the number of threads: tasks shrink as threads are added).
 */
const STAGING_BYTES = 32 * 1024 * 1024;

/**
 * A copy in an ArrayBuffer of its own. Structured clone copies a view's whole backing store, and a
 * small Buffer's is Node's shared 8 KiB pool, which holds other data.
 */
function exact(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}
