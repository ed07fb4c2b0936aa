/**
 * Shared memory that carries a task's input to a worker thread, reused from task to task.
 *
 * A caller's Buffer can't be transferred (that would detach it), so a worker's input is always a copy.
 * Copied into fresh memory, every MiB costs its page faults as well (about four times the copy itself);
 * copied into a buffer that earlier tasks already touched, only the copy remains. The worker reads the
 * input where it is, as a SharedArrayBuffer isn't copied on the way. A released buffer is wiped, so no
 * plaintext outlives its task here (the worker wipes what it sealed, so this thread doesn't have to).
 */
export class StagingArea {
  private readonly free: SharedArrayBuffer[] = [];
  private keptBytes = 0;

  /** @param limit bytes kept for reuse at most; a buffer that doesn't fit is used once */
  constructor(private readonly limit: number) {}

  /** The `buffers`, concatenated in shared memory, and the length of each. */
  stage(buffers: readonly Uint8Array[]): { data: Uint8Array; lengths: Uint32Array } {
    const lengths = new Uint32Array(buffers.length);
    let total = 0;
    for (let i = 0; i < buffers.length; i++) total += lengths[i] = buffers[i].byteLength;
    const data = this.acquire(total);
    const target = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    for (const buffer of buffers) {
      // fill() with a buffer as long as the range is one native memcpy; set() into shared memory
      // copies a word at a time.
      if (buffer.byteLength) target.fill(buffer, at, at + buffer.byteLength);
      at += buffer.byteLength;
    }
    return { data, lengths };
  }

  /**
   * Gives back what `stage` returned, once the worker is done with it. Wiped here unless `wipe: false`
   * says there is no need: the worker already wiped it (off this thread), or it held a ciphertext.
   */
  release(data: Uint8Array, { wipe = true }: { wipe?: boolean } = {}): void {
    if (wipe) wipeShared(data);
    const buffer = data.buffer as SharedArrayBuffer;
    if (this.keptBytes + buffer.byteLength > this.limit) return;
    this.free.push(buffer);
    this.keptBytes += buffer.byteLength;
  }

  /** Drops every kept buffer. */
  clear(): void {
    this.free.length = 0;
    this.keptBytes = 0;
  }

  private acquire(bytes: number): Uint8Array {
    // The smallest kept buffer that fits, so large ones stay for large tasks.
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].byteLength >= bytes && (best < 0 || this.free[i].byteLength < this.free[best].byteLength))
        best = i;
    }
    if (best >= 0) {
      const [buffer] = this.free.splice(best, 1);
      this.keptBytes -= buffer.byteLength;
      return new Uint8Array(buffer, 0, bytes);
    }
    return new Uint8Array(new SharedArrayBuffer(capacityFor(bytes)), 0, bytes);
  }
}

/** Sizes rounded up to a power of two (64 KiB at least), so a buffer fits the tasks of a similar size. */
function capacityFor(bytes: number): number {
  return Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
}

const ZEROS = Buffer.alloc(64 * 1024);

/**
 * Zeroes shared memory. `fill(0)` on a view of a SharedArrayBuffer stores one element at a time (about
 * 400 µs a MiB), and `set` copies a word at a time (about 50); `Buffer#fill` with a block of zeros
 * repeats it natively, at memory speed (about 25).
 */
export function wipeShared(data: Uint8Array): void {
  if (data.byteLength) Buffer.from(data.buffer, data.byteOffset, data.byteLength).fill(ZEROS);
}
