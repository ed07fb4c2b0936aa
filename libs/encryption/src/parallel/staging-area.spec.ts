import { randomBytes } from 'node:crypto';

import { StagingArea } from './staging-area.js';

describe('StagingArea', () => {
  it('concatenates the inputs in shared memory and leaves the callers’ buffers as they were', () => {
    const staging = new StagingArea(1024 * 1024);
    const inputs = [randomBytes(1000), Buffer.alloc(0), randomBytes(70_000)];
    const copies = inputs.map((input) => Buffer.from(input));
    const { data, lengths } = staging.stage(inputs);
    expect(data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(lengths)).toEqual([1000, 0, 70_000]);
    expect(Buffer.from(data).equals(Buffer.concat(copies))).toBe(true);
    inputs.forEach((input, i) => {
      expect(input.byteLength).toBe(copies[i].byteLength); // not detached
      expect(input.equals(copies[i])).toBe(true);
    });
  });

  it('wipes a released buffer and reuses it for the next task that fits', () => {
    const staging = new StagingArea(1024 * 1024);
    const first = staging.stage([randomBytes(100_000)]).data;
    const shared = first.buffer;
    staging.release(first);
    expect(new Uint8Array(shared).every((byte) => byte === 0)).toBe(true);
    const second = staging.stage([randomBytes(50_000)]).data;
    expect(second.buffer).toBe(shared);
    // While it is in use, another task gets memory of its own.
    expect(staging.stage([randomBytes(10)]).data.buffer).not.toBe(shared);
  });

  it('keeps no more than its limit', () => {
    const staging = new StagingArea(256 * 1024);
    const large = staging.stage([randomBytes(300_000)]).data; // 512 KiB of capacity: over the limit
    staging.release(large);
    expect(staging.stage([randomBytes(300_000)]).data.buffer).not.toBe(large.buffer);
    const small = [1, 2, 3, 4, 5].map(() => staging.stage([randomBytes(1000)]).data); // 64 KiB each
    small.forEach((data) => staging.release(data));
    const reused = [1, 2, 3, 4, 5].map(() => staging.stage([randomBytes(1000)]).data.buffer);
    expect(reused.filter((buffer) => small.some((data) => data.buffer === buffer))).toHaveLength(4);
  });
});
