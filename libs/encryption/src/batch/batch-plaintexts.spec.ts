import { encodePlaintext } from '../crypto/plaintext-codec.js';
import { BatchPlaintexts } from './batch-plaintexts.js';

describe('BatchPlaintexts', () => {
  const values = ['a', 'bb', 'ccc', 'dddd'];
  const tracked = (items: unknown[], onFailure: (index: number, error: unknown) => void = () => undefined) => {
    const encoded: number[] = [];
    const plaintexts = new BatchPlaintexts(
      items.length,
      (index) => {
        encoded.push(index);
        if (items[index] === undefined) throw new Error(`item ${index}`);
        return encodePlaintext(items[index] as string);
      },
      onFailure,
      true,
    );
    return { plaintexts, encoded };
  };

  it('encodes each item once, in input order, only when it is first needed', () => {
    const { plaintexts, encoded } = tracked(values);
    expect(plaintexts.at(1).toString()).toBe('bb');
    expect(encoded).toEqual([0, 1]);
    expect(plaintexts.allEncoded).toBe(false);
    plaintexts.encodeTo(4);
    plaintexts.at(0);
    expect(encoded).toEqual([0, 1, 2, 3]);
    expect(plaintexts.allEncoded).toBe(true);
    expect(plaintexts.bytes.map(String)).toEqual(values);
    expect(plaintexts.byteLength).toBe(10);
  });

  it('estimates what is not encoded yet from the average of what is', () => {
    const { plaintexts } = tracked(values);
    plaintexts.encodeTo(2); // 1 + 2 bytes: 1.5 on average
    expect(plaintexts.estimate(0, 2)).toBe(3);
    expect(plaintexts.estimate(1, 4)).toBe(2 + 2 * 1.5);
    expect(plaintexts.estimate(3, 4)).toBe(1.5);
    plaintexts.encodeTo(4);
    expect(plaintexts.estimate(1, 4)).toBe(9);
  });

  it('reports an item that fails to encode and keeps its place with an empty placeholder', () => {
    const failures: [number, string][] = [];
    const { plaintexts } = tracked(['a', undefined, 'ccc'], (index, error) => failures.push([index, (error as Error).message]));
    plaintexts.encodeTo(3);
    expect(failures).toEqual([[1, 'item 1']]);
    expect([...plaintexts.failed]).toEqual([0, 1, 0]);
    expect(plaintexts.bytes.map((bytes) => bytes.length)).toEqual([1, 0, 3]);
    expect(plaintexts.byteLength).toBe(4);
  });

  it('moves past a failed item even when reporting it throws (failFast)', () => {
    const { plaintexts, encoded } = tracked(['a', undefined, 'ccc'], (index) => {
      throw new Error(`stop at ${index}`);
    });
    expect(() => plaintexts.encodeTo(3)).toThrow('stop at 1');
    expect(plaintexts.at(2).toString()).toBe('ccc');
    expect(encoded).toEqual([0, 1, 2]);
  });
});
