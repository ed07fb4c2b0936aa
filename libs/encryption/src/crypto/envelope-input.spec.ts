import fc from 'fast-check';

import { EncryptionInputError } from '../errors/encryption.errors.js';
import { contextBytes } from './envelope-input.js';

/** The AAD form of an object context as docs/FORMAT.md defines it: 0x02, then JSON of the key-sorted entries. */
function reference(context: Record<string, string>): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.concat([Buffer.from([2]), Buffer.from(JSON.stringify(entries), 'utf8')]);
}

describe('contextBytes', () => {
  it('encodes no context as nothing, and text and bytes behind the tag 0x01', () => {
    expect(contextBytes(undefined)).toEqual(Buffer.alloc(0));
    expect(contextBytes('tenant-7')).toEqual(Buffer.from('\x01tenant-7', 'latin1'));
    expect(contextBytes(new Uint8Array([0, 255]))).toEqual(Buffer.from([1, 0, 255]));
  });

  it('encodes an object as 0x02 and the JSON of its entries sorted by key', () => {
    expect(contextBytes({ record: 'r1', field: 'email' }).toString('utf8')).toBe('\x02[["field","email"],["record","r1"]]');
    expect(contextBytes({})).toEqual(Buffer.from('\x02[]', 'utf8'));
  });

  it('matches the documented encoding for any object of strings, in any key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), (context) => {
        const reversed = Object.fromEntries(Object.entries(context).reverse());
        expect(contextBytes(context)).toEqual(reference(context));
        expect(contextBytes(reversed)).toEqual(reference(context));
      }),
    );
  });

  it.each([[{ n: 1 }], [{ nested: { a: 'b' } }], [{ a: 'ok', b: null }], [null], [42]])('refuses %j', (context) => {
    expect(() => contextBytes(context as never)).toThrow(EncryptionInputError);
  });
});
