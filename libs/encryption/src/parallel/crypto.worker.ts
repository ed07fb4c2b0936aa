import { move, transferableSymbol, valueSymbol } from 'piscina';

import type { OpenJob, SealJob } from './seal-job.js';
import { runOpenJob, runSealJob } from './seal-job.js';
import { wipeShared } from './staging-area.js';

/** A task of `CryptoWorkerPool`: seal many envelopes, or open one large one. */
export type CryptoTask = ({ kind: 'seal' } & SealJob) | ({ kind: 'open' } & OpenJob);

/**
 * The worker thread's entry point (piscina calls the default export). Results travel back as
 * transferred buffers, not copies. The copy of the cipher key this thread received, and the plaintexts
 * it sealed (in the pool's shared staging memory), are wiped after use.
 */
export default function runCryptoTask(task: CryptoTask): unknown {
  try {
    if (task.kind === 'seal') {
      // Each plaintext is wiped as soon as it is sealed, while it is still in this core's cache.
      const output = runSealJob(task, (_index, plaintext) => wipeShared(plaintext));
      return movable(output.buffers, output);
    }
    const plaintext = ownBuffer(runOpenJob(task));
    return movable([plaintext], plaintext);
  } catch (error) {
    // The plaintexts came in shared memory the pool reuses: leave none of them behind.
    if (task.kind === 'seal') wipeShared(task.data);
    throw error;
  } finally {
    task.key.fill(0);
  }
}

function movable<T>(buffers: Uint8Array[], value: T): unknown {
  return move({
    get [transferableSymbol]() {
      return buffers.map((buffer) => buffer.buffer);
    },
    get [valueSymbol]() {
      return value;
    },
  } as never);
}

/** Transferring a view of Node's shared allocation pool would detach the pool: copy such a view out first. */
function ownBuffer(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}
