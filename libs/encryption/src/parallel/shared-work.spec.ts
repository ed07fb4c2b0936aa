import { setImmediate as nextTurn } from 'node:timers/promises';

import type { SharedWork } from './shared-work.js';
import { runShared } from './shared-work.js';

/** Items that record who ran them; "workers" answer after a few turns of the event loop, like a thread. */
function recorder(items: number, options: { taskSize?: number; hereSize?: number; here?: (index: number) => boolean } = {}) {
  const ranBy: string[] = new Array(items);
  const tasks: [number, number][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const { taskSize = 1, hereSize = 1, here = () => true } = options;
  const work: SharedWork<string> = {
    items,
    lanes: 2,
    taskEnd: (start, end) => Math.min(end, start + taskSize),
    offload: async (start, end) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      tasks.push([start, end]);
      for (let turn = 0; turn < 3; turn++) await nextTurn();
      inFlight--;
      const results: string[] = [];
      for (let i = start; i < end; i++) {
        ranBy[i] = 'worker';
        results.push(`result ${i}`);
      }
      return results;
    },
    hereStart: (start, end) => {
      let from = end;
      while (from > start && end - from < hereSize && here(from - 1)) from--;
      return from;
    },
    runHere: (start, end) => {
      const results: string[] = [];
      for (let i = start; i < end; i++) {
        ranBy[i] = 'caller';
        results.push(`result ${i}`);
      }
      return results;
    },
  };
  return { ranBy, tasks, work, maxInFlight: () => maxInFlight };
}

const inOrder = (items: number) => Array.from({ length: items }, (_, i) => `result ${i}`);

describe('runShared', () => {
  it('returns every item’s result in order, whoever ran it, with workers from the front and the caller from the back', async () => {
    const { ranBy, work, maxInFlight } = recorder(40);
    expect(await runShared(work)).toEqual(inOrder(40));
    expect(ranBy.filter(Boolean)).toHaveLength(40);
    expect(ranBy[0]).toBe('worker');
    expect(ranBy[39]).toBe('caller');
    // One contiguous run each: the two ends met once.
    expect(ranBy.join(',')).toMatch(/^(worker,)+(caller,?)+$/);
    expect(maxInFlight()).toBe(2);
  });

  it('hands the workers tasks of several items where taskEnd says so, and the caller runs of several', async () => {
    const { ranBy, tasks, work } = recorder(50, { taskSize: 4, hereSize: 3 });
    expect(await runShared(work)).toEqual(inOrder(50));
    expect(tasks.length).toBeGreaterThan(1);
    // Contiguous tasks from the front, none larger than asked, none overlapping what the caller ran.
    tasks.forEach(([start, end], i) => {
      expect(end - start).toBeGreaterThanOrEqual(1);
      expect(end - start).toBeLessThanOrEqual(4);
      if (i > 0) expect(start).toBe(tasks[i - 1][1]);
      for (let item = start; item < end; item++) expect(ranBy[item]).toBe('worker');
    });
    expect(tasks[0][0]).toBe(0);
    expect(ranBy.join(',')).toMatch(/^(worker,)+(caller,?)+$/);
  });

  it('leaves items the caller may not run to the workers', async () => {
    const { ranBy, work } = recorder(10, { here: (index) => index % 2 === 0 });
    await runShared(work);
    // The caller stops at the first item too large for it (9, from the back), so the workers ran them all.
    expect(ranBy.every((by) => by === 'worker')).toBe(true);
  });

  it('runs every item on the workers, one per task, without runHere and taskEnd', async () => {
    const { ranBy, tasks, work } = recorder(12);
    const { runHere: _unused, hereStart: _alsoUnused, taskEnd: _andThis, ...workersOnly } = work;
    expect(await runShared(workersOnly)).toEqual(inOrder(12));
    expect(ranBy.every((by) => by === 'worker')).toBe(true);
    expect(tasks).toHaveLength(12);
  });

  it('rejects with the first failure and starts no task after it', async () => {
    let started = 0;
    const failure = new Error('worker failed');
    const promise = runShared({
      items: 50,
      lanes: 2,
      offload: async (start) => {
        started++;
        await nextTurn();
        if (start === 3) throw failure;
        return [start];
      },
    });
    await expect(promise).rejects.toBe(failure);
    expect(started).toBeLessThan(50);
  });
});
