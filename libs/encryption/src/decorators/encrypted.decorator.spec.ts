import 'reflect-metadata';

import { ENCRYPTED_FIELDS_METADATA } from '../encryption.constants.js';
import { encryptedFieldsOf } from '../field-encryption/encrypted-fields.metadata.js';
import type { EncryptedFieldOptions } from '../interfaces/encrypted-field-options.interface.js';
import { Encrypted } from './encrypted.decorator.js';

describe('@Encrypted()', () => {
  it('records each property with its options under a namespaced key', () => {
    class Account {
      @Encrypted() email!: string;
      @Encrypted({ context: { table: 'accounts' }, compress: false, maxLength: 100 }) notes!: string;
      plain!: string;
    }
    expect(ENCRYPTED_FIELDS_METADATA).toBe('ENCRYPTION:ENCRYPTED_FIELDS');
    const own = Reflect.getOwnMetadata(ENCRYPTED_FIELDS_METADATA, Account) as Map<string, EncryptedFieldOptions>;
    expect([...own]).toEqual([
      ['email', {}],
      ['notes', { context: { table: 'accounts' }, compress: false, maxLength: 100 }],
    ]);
  });

  it("merges a parent's fields into a subclass, the subclass's options winning, without changing the parent", () => {
    class Base {
      @Encrypted({ context: 'base' }) secret!: string;
      @Encrypted() shared!: string;
    }
    class Derived extends Base {
      @Encrypted({ context: 'derived' }) override secret = '';
      @Encrypted() extra!: number;
    }
    expect(Object.fromEntries(encryptedFieldsOf(Derived))).toEqual({
      secret: { context: 'derived' },
      shared: {},
      extra: {},
    });
    expect(Object.fromEntries(encryptedFieldsOf(Base))).toEqual({ secret: { context: 'base' }, shared: {} });
  });

  it('gives classes without marks, plain objects and non-classes no fields', () => {
    class Nothing {
      value = 1;
    }
    expect(encryptedFieldsOf(Nothing).size).toBe(0);
    expect(encryptedFieldsOf(Object).size).toBe(0);
    expect(encryptedFieldsOf(undefined).size).toBe(0);
  });

  it('refuses accessors, methods and static properties when the class is defined', () => {
    const message = (property: string) =>
      `@Encrypted() applies to instance properties, not to methods, accessors or static members ("${property}")`;
    expect(() => {
      class WithAccessor {
        @Encrypted()
        get value(): string {
          return 'x';
        }
      }
      return WithAccessor;
    }).toThrow(new TypeError(message('value')));
    expect(() => {
      class WithMethod {
        @Encrypted()
        method(): void {}
      }
      return WithMethod;
    }).toThrow(new TypeError(message('method')));
    expect(() => {
      class WithStatic {
        @Encrypted() static value: string;
      }
      return WithStatic;
    }).toThrow(new TypeError(message('value')));
  });

  it('refuses invalid options when the class is defined', () => {
    expect(() => Encrypted({ context: 5 as unknown as string })).toThrow(
      new TypeError('@Encrypted({ context }) must be a string or an object of strings'),
    );
    expect(() => Encrypted({ context: { a: 1 } as unknown as Record<string, string> })).toThrow(TypeError);
    expect(() => Encrypted({ compress: 'yes' as unknown as boolean })).toThrow(
      new TypeError('@Encrypted({ compress }) must be a boolean'),
    );
    for (const maxLength of [0, -1, 1.5, Number.NaN]) {
      expect(() => Encrypted({ maxLength })).toThrow(new TypeError('A maximum ciphertext length must be a positive integer'));
    }
  });

  it("keeps its own copy of the options, so later changes to the caller's object don't apply", () => {
    const options: EncryptedFieldOptions = { context: 'before' };
    class Holder {
      @Encrypted(options) value!: string;
    }
    options.context = 'after';
    expect(encryptedFieldsOf(Holder).get('value')).toEqual({ context: 'before' });
  });
});
