import { setImmediate as nextTurn } from 'node:timers/promises';

import { runShared } from './shared-work.js';

/** Parts that record who ran them; "workers" answer after a few turns of the event loop, like a thread. */
function recorder(parts: number, here: (index: number) => boolean = () => true) {
  const ranBy: string[] = new Array(parts);
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    ranBy,
    maxInFlight: () => maxInFlight,
    work: {
      parts,
      capacity: 2,
      offload: async (index: number) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        for (let turn = 0; turn < 3; turn++) await nextTurn();
        inFlight--;
        ranBy[index] = 'worker';
        return `result ${index}`;
      },
      here,
      runHere: (index: number) => {
        ranBy[index] = 'caller';
        return `result ${index}`;
      },
    },
  };
}

describe('runShared', () => {
  it('returns every part’s result in order, whoever ran it, with workers from the front and the caller from the back', async () => {
    const { ranBy, work, maxInFlight } = recorder(40);
    const results = await runShared(work);
    expect(results).toEqual(Array.from({ length: 40 }, (_, i) => `result ${i}`));
    expect(ranBy.filter(Boolean)).toHaveLength(40);
    expect(ranBy[0]).toBe('worker');
    expect(ranBy[39]).toBe('caller');
    // One contiguous run each: the two ends met once.
    expect(ranBy.join(',')).toMatch(/^(worker,)+(caller,?)+$/);
    expect(maxInFlight()).toBe(2);
  });

  it('leaves parts the caller may not run to the workers', async () => {
    const { ranBy, work } = recorder(10, (index) => index % 2 === 0);
    await runShared(work);
    // The caller stops at the first part too large for it (9, from the back), so the workers ran them all.
    expect(ranBy.every((by) => by === 'worker')).toBe(true);
  });

  it('runs every part on the workers when there is no runHere', async () => {
    const { ranBy, work } = recorder(12);
    const { runHere: _unused, here: _alsoUnused, ...workersOnly } = work;
    expect(await runShared(workersOnly)).toEqual(Array.from({ length: 12 }, (_, i) => `result ${i}`));
    expect(ranBy.every((by) => by === 'worker')).toBe(true);
  });

  it('rejects with the first failure and starts no part after it', async () => {
    let started = 0;
    const failure = new Error('worker failed');
    const promise = runShared({
      parts: 50,
      capacity: 2,
      offload: async (index) => {
        started++;
        await nextTurn();
        if (index === 3) throw failure;
        return index;
      },
    });
    await expect(promise).rejects.toBe(failure);
    expect(started).toBeLessThan(50);
  });
});
