import { setImmediate as nextTurn } from 'node:timers/promises';

/** How the parts of one batch are run: on a worker, and (for parts that may) on the calling thread. */
export interface SharedWork<R> {
  /** Number of parts, run in any order; results come back in this order. */
  parts: number;
  /** Parts kept in flight on the workers at once (`CryptoWorkerPool.capacity`). */
  capacity: number;
  /** Runs part `index` on a worker. */
  offload(index: number): Promise<R>;
  /** Runs part `index` on the calling thread, if it may (see `here`). Without it, only the workers run parts. */
  runHere?(index: number): R | Promise<R>;
  /** Whether part `index` is small enough to hold the event loop for (the calling thread skips the rest). */
  here?(index: number): boolean;
}

/**
 * Runs a batch's parts on every core: the workers take parts from the front, the calling thread from
 * the back, one part per turn of the event loop (so worker results are collected and more work handed
 * out between its parts), until they meet. Without the calling thread, one core of the machine would
 * mostly wait while it copies inputs for the workers; with it, the batch ends when the last part does,
 * whoever runs it. Rejects with the first failure; no new part starts after one.
 */
export async function runShared<R>(work: SharedWork<R>): Promise<R[]> {
  const results: R[] = new Array(work.parts);
  let front = 0;
  let back = work.parts;
  let failed = false;
  const guard = async (lane: () => Promise<void>): Promise<void> => {
    try {
      await lane();
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const worker = async () => {
    while (!failed && front < back) {
      const index = front++;
      results[index] = await work.offload(index);
    }
  };
  const caller = async () => {
    for (;;) {
      // A turn of the event loop first: the workers' first parts leave, finished ones are collected.
      await nextTurn();
      if (failed || front >= back || !work.here?.(back - 1)) return;
      const index = --back;
      results[index] = await work.runHere!(index);
    }
  };
  const lanes = Array.from({ length: Math.min(work.capacity, work.parts) }, () => guard(worker));
  await Promise.all(work.runHere ? [...lanes, guard(caller)] : lanes);
  return results;
}
