import { setImmediate as nextTurn } from 'node:timers/promises';

/** How the items of one batch are run: in tasks on the workers, and (items that may) on the calling thread. */
export interface SharedWork<R> {
  /** Number of items, run in any order; results come back in this order. */
  items: number;
  /** Worker tasks kept in flight at once: enough that no worker waits for its next task. */
  lanes: number;
  /**
   * Where the next worker task, starting at item `start`, ends (exclusive): after at least one item,
   * and at `end` at most (the items from `end` on are taken). Without it, one item per task.
   */
  taskEnd?(start: number, end: number): number;
  /** Runs items `start` to `end` (exclusive) in one task on a worker: one result per item. */
  offload(start: number, end: number): Promise<R[]>;
  /**
   * Where the calling thread's next run of items, ending at `end` (exclusive), starts: at `start` the
   * earliest, and `end` when item `end - 1` is too large to hold the event loop for (the calling thread
   * then leaves the rest to the workers). Without it (or `runHere`), only the workers run items.
   */
  hereStart?(start: number, end: number): number;
  /** Runs items `start` to `end` (exclusive) on the calling thread: one result per item. */
  runHere?(start: number, end: number): R[] | Promise<R[]>;
}

/**
 * Runs a batch on every core: the workers take tasks from the front, the calling thread runs of items
 * from the back, one run per turn of the event loop (so worker results are collected and more work
 * handed out between its runs), until they meet. Without the calling thread, one core of the
 * machine would mostly wait while it copies inputs for the workers; with it, the batch ends when the
 * last item does, whoever runs it. Rejects with the first failure; no new task starts after one.
 */
export async function runShared<R>(work: SharedWork<R>): Promise<R[]> {
  const results: R[] = new Array(work.items);
  let front = 0;
  let back = work.items;
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
      const start = front;
      const end = Math.min(back, Math.max(start + 1, work.taskEnd?.(start, back) ?? start + 1));
      front = end;
      const done = await work.offload(start, end);
      for (let i = start; i < end; i++) results[i] = done[i - start];
    }
  };
  const caller = async () => {
    for (;;) {
      // A turn of the event loop first: the workers' first tasks leave, finished ones are collected.
      await nextTurn();
      if (failed || front >= back) return;
      const end = back;
      const start = Math.max(front, Math.min(end, work.hereStart!(front, end)));
      if (start === end) return;
      back = start;
      const done = await work.runHere!(start, end);
      for (let i = start; i < end; i++) results[i] = done[i - start];
    }
  };
  const lanes = Array.from({ length: Math.min(work.lanes, work.items) }, () => guard(worker));
  await Promise.all(work.runHere && work.hereStart ? [...lanes, guard(caller)] : lanes);
  return results;
}
