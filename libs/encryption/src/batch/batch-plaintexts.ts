import type { EncodedPlaintext } from '../crypto/plaintext-codec.js';

const PLACEHOLDER = Buffer.alloc(0);

/**
 * A batch's plaintexts, encoded in input order as they are first needed. Encoding (`JSON.stringify`
 * for objects) can cost as much as sealing, so a large batch hands its first items to the workers
 * while this thread is still encoding the rest, instead of encoding everything first.
 *
 * An item that fails to encode is reported through `onFailure` (which may throw, for `failFast`) and
 * stands in as an empty placeholder, so items keep their positions; its envelope is dropped.
 */
export class BatchPlaintexts {
  readonly bytes: Buffer[];
  readonly types: Uint8Array;
  readonly failed: Uint8Array;
  /** Items `[0, encoded)` are encoded (or failed). */
  private encoded = 0;
  /** Bytes before item i, for the encoded items (and one past them). */
  private readonly before: Float64Array;

  /**
   * @param encode item `index`'s bytes and payload type
   * @param lazy whether items may be encoded as the work reaches them (when every item costs an
   *   encoding); otherwise a pooled batch encodes them all first
   */
  constructor(
    readonly length: number,
    private readonly encode: (index: number) => EncodedPlaintext,
    private readonly onFailure: (index: number, error: unknown) => void,
    readonly lazy: boolean,
  ) {
    this.bytes = new Array(length);
    this.types = new Uint8Array(length);
    this.failed = new Uint8Array(length);
    this.before = new Float64Array(length + 1);
  }

  get allEncoded(): boolean {
    return this.encoded === this.length;
  }

  /** Bytes of the items encoded so far. */
  get byteLength(): number {
    return this.before[this.encoded];
  }

  /** Encodes every item before `end` that isn't yet. */
  encodeTo(end: number): this {
    while (this.encoded < end) {
      const index = this.encoded++;
      try {
        const { bytes, type } = this.encode(index);
        this.bytes[index] = bytes;
        this.types[index] = type;
      } catch (error) {
        this.bytes[index] = PLACEHOLDER;
        this.failed[index] = 1;
        this.before[index + 1] = this.before[index];
        this.onFailure(index, error);
        continue;
      }
      this.before[index + 1] = this.before[index] + this.bytes[index].length;
    }
    return this;
  }

  /** Item `index`'s bytes, encoded now if they weren't yet. */
  at(index: number): Buffer {
    return this.encodeTo(index + 1).bytes[index];
  }

  /** The bytes of items `[start, end)`, guessed from the average encoded item where they aren't encoded yet. */
  estimate(start: number, end: number): number {
    const known = Math.max(start, Math.min(end, this.encoded));
    const average = this.encoded ? this.byteLength / this.encoded : 0;
    return this.before[known] - this.before[Math.min(start, known)] + (end - known) * average;
  }
}
