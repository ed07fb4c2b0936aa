import 'reflect-metadata';

import { Type } from 'class-transformer';
import fc from 'fast-check';

import type { EncryptionTestApp } from '../../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../../test/support/encryption-test-app.js';
import { CompressionCodec, parseEnvelope } from '../crypto/envelope.js';
import type { JsonValue } from '../crypto/plaintext-codec.js';
import { Encrypted } from '../decorators/encrypted.decorator.js';
import { EncryptionInputError } from '../errors/encryption.errors.js';
import { EncryptedFieldError } from './encrypted-field.error.js';
import { FieldEncryptionService } from './field-encryption.service.js';

class Address {
  @Encrypted() street!: string;
  city!: string;
}

class Payload {
  @Encrypted() text!: string;
  @Encrypted() count!: number;
  @Encrypted() flag!: boolean;
  @Encrypted() tags!: string[];
  @Encrypted() meta!: Record<string, JsonValue>;
  @Encrypted() optional?: string;
  @Encrypted() nothing!: string | null;
  plain = 'left alone';
  @Type(() => Address) home!: Address;
  @Type(() => Address) previous!: Address[];
}

class Bound {
  @Encrypted({ context: { table: 'users', column: 'ssn' } }) ssn!: string;
  @Encrypted({ compress: true }) big!: string;
  @Encrypted({ compress: false }) bigRaw!: string;
}

function payload(): Payload {
  return Object.assign(new Payload(), {
    text: 'ünïcødé 🔐',
    count: -12.5,
    flag: false,
    tags: ['a', 'b'],
    meta: { nested: { deep: [1, null, true] } },
    optional: undefined,
    nothing: null,
    home: Object.assign(new Address(), { street: '1 Main St', city: 'Springfield' }),
    previous: [Object.assign(new Address(), { street: '2 Side St', city: 'Shelbyville' })],
  });
}

async function rejectionOf(promise: Promise<unknown>): Promise<EncryptedFieldError> {
  try {
    await promise;
  } catch (error) {
    return error as EncryptedFieldError;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

function expectRejection(error: EncryptedFieldError, field: string, reason: string, message: string, code = reason): void {
  expect(error).toBeInstanceOf(EncryptedFieldError);
  expect({ field: error.field, reason: error.reason, code: error.code, message: error.message }).toEqual({
    field,
    reason,
    code,
    message,
  });
}

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

describe('FieldEncryptionService', () => {
  let app: EncryptionTestApp;
  let fields: FieldEncryptionService;

  beforeAll(async () => {
    app = await apps.create({ maxDecompressedSize: 10_000, compressionThreshold: 64 });
    fields = app.module.get(FieldEncryptionService);
  });

  describe('encryptFields', () => {
    it('encrypts every marked field of every JSON type, and each decrypts to the same value and type', async () => {
      const original = payload();
      const encrypted = await fields.encryptFields(original);

      for (const key of ['text', 'count', 'flag', 'tags', 'meta'] as const) {
        expect(typeof encrypted[key]).toBe('string');
        expect(encrypted[key]).not.toEqual(original[key]);
        expect(await app.encryption.decrypt(encrypted[key] as unknown as string)).toEqual(original[key]);
      }
      expect(await app.encryption.decrypt(encrypted.home.street)).toBe('1 Main St');
      expect(await app.encryption.decrypt(encrypted.previous[0].street)).toBe('2 Side St');
    });

    it('leaves null, undefined and unmarked fields as they are', async () => {
      const encrypted = await fields.encryptFields(payload());
      expect(encrypted.optional).toBeUndefined();
      expect(Object.hasOwn(encrypted, 'optional')).toBe(true);
      expect(encrypted.nothing).toBeNull();
      expect(encrypted.plain).toBe('left alone');
      expect(encrypted.home.city).toBe('Springfield');
      expect(encrypted.previous[0].city).toBe('Shelbyville');
    });

    it('returns copies with the same prototypes and never modifies the original', async () => {
      const original = payload();
      const snapshot = structuredClone(original);
      const encrypted = await fields.encryptFields(original);

      expect(encrypted).not.toBe(original);
      expect(Object.getPrototypeOf(encrypted)).toBe(Payload.prototype);
      expect(encrypted.home).toBeInstanceOf(Address);
      expect(encrypted.home).not.toBe(original.home);
      expect(encrypted.previous).not.toBe(original.previous);
      expect(encrypted.previous[0]).toBeInstanceOf(Address);
      expect(original).toEqual(snapshot);
      expect(original).toBeInstanceOf(Payload);
    });

    it('shares, rather than copies, whatever holds nothing to encrypt', async () => {
      const untouched = { list: [1, 2, { a: 'b' }], when: new Date(0) };
      expect(await fields.encryptFields(untouched)).toBe(untouched);
      const mixed = { untouched, address: Object.assign(new Address(), { street: 's', city: 'c' }) };
      const result = await fields.encryptFields(mixed);
      expect(result).not.toBe(mixed);
      expect(result.untouched).toBe(untouched);
      expect(result.address.city).toBe('c');
    });

    it('walks plain objects and arrays around instances', async () => {
      const wrapped = { data: [[Object.assign(new Address(), { street: 'x', city: 'y' })]], total: 1 };
      const result = await fields.encryptFields(wrapped);
      expect(await app.encryption.decrypt(result.data[0][0].street)).toBe('x');
      expect(result.total).toBe(1);
      expect(wrapped.data[0][0].street).toBe('x');
    });

    it('encrypts frozen instances into writable copies', async () => {
      const frozen = Object.freeze(Object.assign(new Address(), { street: 'frozen', city: 'c' }));
      const result = await fields.encryptFields(frozen);
      expect(await app.encryption.decrypt(result.street)).toBe('frozen');
      expect(frozen.street).toBe('frozen');
    });

    it('copies an own "__proto__" key as a property, without a prototype setter running', async () => {
      const tricky = Object.assign(new Address(), { street: 's', city: 'c' });
      Object.defineProperty(tricky, '__proto__', { value: { injected: true }, enumerable: true, writable: true, configurable: true });
      const result = await fields.encryptFields(tricky);
      expect(Object.getPrototypeOf(result)).toBe(Address.prototype);
      expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toEqual({ injected: true });
      expect(await app.encryption.decrypt(result.street)).toBe('s');
    });

    it('copies own properties that shadow a setter or a read-only property up the prototype chain, running neither', async () => {
      class Guarded extends Address {}
      Object.defineProperty(Guarded.prototype, 'city', {
        set() {
          throw new Error('the prototype setter ran');
        },
      });
      Object.defineProperty(Guarded.prototype, 'kind', { value: 'guarded', writable: false });
      const source = Object.assign(new Guarded(), { street: 's' });
      for (const [key, value] of [['city', 'c'], ['kind', 'own']]) {
        Object.defineProperty(source, key, { value, enumerable: true, writable: true, configurable: true });
      }
      const result = await fields.encryptFields(source);
      expect(Object.getPrototypeOf(result)).toBe(Guarded.prototype);
      expect(Object.getOwnPropertyDescriptor(result, 'city')).toMatchObject({ value: 'c', writable: true });
      expect(Object.getOwnPropertyDescriptor(result, 'kind')).toMatchObject({ value: 'own', writable: true });
      expect(await app.encryption.decrypt(result.street)).toBe('s');
    });

    it('keeps non-enumerable and symbol-keyed own properties of the copy as they were', async () => {
      const tag = Symbol('tag');
      const source = Object.assign(new Address(), { street: 's', city: 'c' });
      Object.defineProperty(source, 'hidden', { value: 'h', enumerable: false });
      Object.defineProperty(source, tag, { value: 't', enumerable: true });
      const result = await fields.encryptFields(source);
      expect(Object.getOwnPropertyDescriptor(result, 'hidden')).toMatchObject({ value: 'h', enumerable: false, configurable: true });
      expect((result as unknown as Record<symbol, unknown>)[tag]).toBe('t');
      expect(Object.keys(result)).toEqual(['street', 'city']);
      expect(await app.encryption.decrypt(result.street)).toBe('s');
    });

    it('stops at cycles instead of looping', async () => {
      const node: { self?: unknown; address: Address } = { address: Object.assign(new Address(), { street: 'loop', city: 'c' }) };
      node.self = node;
      const result = await fields.encryptFields(node);
      expect(await app.encryption.decrypt(result.address.street)).toBe('loop');
      expect(result.self).toBe(node);
    });

    it('refuses to walk deeper than 64 levels rather than skip fields', async () => {
      let deep: unknown = Object.assign(new Address(), { street: 's', city: 'c' });
      for (let i = 0; i < 70; i++) deep = [deep];
      const error = await rejectionOf(fields.encryptFields(deep));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe("Value nests deeper than 64 levels: its @Encrypted() fields can't all be reached");
    });

    it('passes primitives, null and undefined through', async () => {
      for (const value of ['x', 1, true, null, undefined]) expect(await fields.encryptFields(value)).toBe(value);
    });

    it('binds the field context: decryption needs the same context', async () => {
      const encrypted = await fields.encryptFields(Object.assign(new Bound(), { ssn: '123-45-6789' }));
      expect(await app.encryption.decrypt(encrypted.ssn, { context: { column: 'ssn', table: 'users' } })).toBe('123-45-6789');
      await expect(app.encryption.decrypt(encrypted.ssn)).rejects.toThrow('Decryption failed');
      await expect(app.encryption.decrypt(encrypted.ssn, { context: { table: 'users', column: 'email' } })).rejects.toThrow(
        'Decryption failed',
      );
    });

    it('applies the per-field compress override', async () => {
      const text = 'compressible '.repeat(200);
      const encrypted = await fields.encryptFields(Object.assign(new Bound(), { big: text, bigRaw: text }));
      expect(parseEnvelope(Buffer.from(encrypted.big, 'base64url'))?.codec).toBe(CompressionCodec.Gzip);
      expect(parseEnvelope(Buffer.from(encrypted.bigRaw, 'base64url'))?.codec).toBe(CompressionCodec.None);
      expect(await app.encryption.decrypt(encrypted.big)).toBe(text);
      expect(await app.encryption.decrypt(encrypted.bigRaw)).toBe(text);
    });

    it('round-trips any JSON value through encryptFields and decryptFields', async () => {
      class Holder {
        @Encrypted() value!: JsonValue;
      }
      await fc.assert(
        fc.asyncProperty(fc.jsonValue().filter((value) => value !== null), async (value) => {
          const encrypted = await fields.encryptFields(Object.assign(new Holder(), { value }));
          expect(typeof encrypted.value).toBe('string');
          const body = JSON.parse(JSON.stringify(encrypted)) as Record<string, unknown>;
          await fields.decryptFields(body, Holder);
          // JSON itself turns -0 into 0, so compare with what JSON makes of the value.
          expect(body.value).toEqual(JSON.parse(JSON.stringify(value)));
        }),
        { numRuns: 100 },
      );
    });
  });

  describe('decryptFields', () => {
    class Line {
      @Encrypted() sku!: string;
      @Encrypted() quantity!: number;
    }
    class Customer {
      @Encrypted() email!: string;
      name!: string;
    }
    class Order {
      @Encrypted() note?: string;
      @Type(() => Customer) customer!: Customer;
      @Type(() => Line) lines!: Line[];
      @Encrypted({ maxLength: 10 }) short?: string;
      @Encrypted({ context: 'order.secret' }) secret?: string;
      @Encrypted() flags?: boolean[];
    }

    async function orderBody(): Promise<Record<string, unknown>> {
      const order = Object.assign(new Order(), {
        note: 'leave at door',
        customer: Object.assign(new Customer(), { email: 'a@b.c', name: 'Ann' }),
        lines: [Object.assign(new Line(), { sku: 'A-1', quantity: 2 }), Object.assign(new Line(), { sku: 'B-2', quantity: 5 })],
        secret: 'bound',
        flags: [true, false],
      });
      return JSON.parse(JSON.stringify(await fields.encryptFields(order))) as Record<string, unknown>;
    }

    it('decrypts marked fields in place, through @Type() nested classes and arrays', async () => {
      const body = await orderBody();
      const result = await fields.decryptFields(body, Order);
      expect(result).toBe(body);
      expect(body).toEqual({
        note: 'leave at door',
        customer: { email: 'a@b.c', name: 'Ann' },
        lines: [
          { sku: 'A-1', quantity: 2 },
          { sku: 'B-2', quantity: 5 },
        ],
        secret: 'bound',
        flags: [true, false],
      });
    });

    it('follows design:type to nested classes without @Type()', async () => {
      class Reflected {
        // Any decorator makes TypeScript emit design:type.
        @Reflect.metadata('test', true) customer!: Customer;
      }
      const body = { customer: { email: await app.encryption.encryptToString('x@y.z'), name: 'n' } };
      await fields.decryptFields(body, Reflected);
      expect(body.customer.email).toBe('x@y.z');
    });

    it('picks the subtype of a @Type() discriminator', async () => {
      class Card {
        type = 'card';
        @Encrypted() number!: string;
      }
      class Bank {
        type = 'bank';
        @Encrypted() iban!: string;
      }
      class Checkout {
        @Type(() => Object, {
          discriminator: {
            property: 'type',
            subTypes: [
              { name: 'card', value: Card },
              { name: 'bank', value: Bank },
            ],
          },
        })
        payments!: (Card | Bank)[];
      }
      const body = {
        payments: [
          { type: 'card', number: await app.encryption.encryptToString('4111') },
          { type: 'bank', iban: await app.encryption.encryptToString('DE89') },
        ],
      };
      await fields.decryptFields(body, Checkout);
      expect(body.payments).toEqual([
        { type: 'card', number: '4111' },
        { type: 'bank', iban: 'DE89' },
      ]);
    });

    it('uses the class of an instance when no type is given', async () => {
      const customer = Object.assign(new Customer(), { email: await app.encryption.encryptToString('i@n.st'), name: 'n' });
      await fields.decryptFields(customer);
      expect(customer.email).toBe('i@n.st');
    });

    it('leaves null and undefined fields, and values that are not objects, alone', async () => {
      const body = { note: null, customer: null, lines: [null, 3] };
      await fields.decryptFields(body, Order);
      expect(body).toEqual({ note: null, customer: null, lines: [null, 3] });
      for (const value of [undefined, null, 'text', 5]) expect(await fields.decryptFields(value, Order)).toBe(value);
    });

    it('refuses a marked field that is not a string, naming its path', async () => {
      const body = await orderBody();
      (body.lines as Record<string, unknown>[])[1].quantity = 5;
      expectRejection(
        await rejectionOf(fields.decryptFields(body, Order)),
        'lines.1.quantity',
        'INVALID_TYPE',
        'Encrypted field "lines.1.quantity" must be a ciphertext string',
      );
    });

    it('prefixes the given path', async () => {
      const error = await rejectionOf(fields.decryptFields({ email: 42 }, Customer, { path: 'customer' }));
      expectRejection(error, 'customer.email', 'INVALID_TYPE', 'Encrypted field "customer.email" must be a ciphertext string');
    });

    it('refuses ciphertexts that are not base64url, truncated or tampered with the one generic reason', async () => {
      const valid = await app.encryption.encryptToString('secret@example.com');
      const tampered = valid.slice(0, -2) + (valid.at(-2) === 'A' ? 'B' : 'A') + valid.at(-1);
      for (const ciphertext of ['not base64 !!', valid.slice(0, 40), tampered, '']) {
        const error = await rejectionOf(fields.decryptFields({ email: ciphertext, name: 'n' }, Customer));
        expectRejection(error, 'email', 'DECRYPTION_FAILED', 'Encrypted field "email" could not be decrypted');
        expect(error.message).not.toContain(ciphertext || '\u0000');
      }
    });

    it('refuses a ciphertext of an unknown key as DECRYPTION_FAILED, with KEY_NOT_FOUND as the code', async () => {
      const other = await apps.create();
      const foreign = await other.encryption.encryptToString('x@y.z');
      const error = await rejectionOf(fields.decryptFields({ email: foreign }, Customer));
      expectRejection(error, 'email', 'DECRYPTION_FAILED', 'Encrypted field "email" could not be decrypted', 'KEY_NOT_FOUND');
    });

    it('refuses a JWE where asymmetric encryption is disabled as DECRYPTION_FAILED (a 400), with FORMAT_DISABLED as the code', async () => {
      const noJwe = await apps.create({ enableAsymmetric: false });
      const token = await app.encryption.encryptForPublicKey('x@y.z');
      const error = await rejectionOf(noJwe.module.get(FieldEncryptionService).decryptFields({ email: token }, Customer));
      expectRejection(error, 'email', 'DECRYPTION_FAILED', 'Encrypted field "email" could not be decrypted', 'FORMAT_DISABLED');
    });

    it('refuses a ciphertext bound to another context', async () => {
      const body = { secret: await app.encryption.encryptToString('bound', { context: 'order.other' }) };
      expectRejection(
        await rejectionOf(fields.decryptFields(body, Order)),
        'secret',
        'DECRYPTION_FAILED',
        'Encrypted field "secret" could not be decrypted',
      );
      const unbound = { secret: await app.encryption.encryptToString('bound') };
      expect((await rejectionOf(fields.decryptFields(unbound, Order))).reason).toBe('DECRYPTION_FAILED');
    });

    it('refuses a value that decrypts to another type than the property declares', async () => {
      const cases: [object, string, string][] = [
        [{ email: await app.encryption.encryptToString(42) }, 'email', 'a string'],
        [{ lines: [{ quantity: await app.encryption.encryptToString('2') }] }, 'lines.0.quantity', 'a number'],
        [{ flags: await app.encryption.encryptToString({ 0: true }) }, 'flags', 'an array'],
        [{ email: await app.encryption.encryptToString(Buffer.from('bytes')) }, 'email', 'a string'],
      ];
      for (const [body, field, expected] of cases) {
        const type = field === 'email' ? Customer : Order;
        expectRejection(
          await rejectionOf(fields.decryptFields(body, type)),
          field,
          'INVALID_TYPE',
          `Encrypted field "${field}" does not decrypt to ${expected}`,
        );
      }
    });

    it('refuses bytes where the property declares no type', async () => {
      class Loose {
        @Encrypted() anything: unknown;
      }
      const body = { anything: await app.encryption.encryptToString(Buffer.from([1, 2])) };
      expectRejection(
        await rejectionOf(fields.decryptFields(body, Loose)),
        'anything',
        'INVALID_TYPE',
        'Encrypted field "anything" does not decrypt to a JSON value',
      );
    });

    it('refuses a ciphertext longer than the field limit or the default limit before decrypting it', async () => {
      expectRejection(
        await rejectionOf(fields.decryptFields({ short: 'x'.repeat(11) }, Order)),
        'short',
        'CIPHERTEXT_TOO_LARGE',
        'Encrypted field "short" exceeds the maximum length of 10 characters',
      );
      expectRejection(
        await rejectionOf(fields.decryptFields({ note: 'x'.repeat(101) }, Order, { maxLength: 100 })),
        'note',
        'CIPHERTEXT_TOO_LARGE',
        'Encrypted field "note" exceeds the maximum length of 100 characters',
      );
      expectRejection(
        await rejectionOf(fields.decryptFields({ note: 'x'.repeat(65_537) }, Order)),
        'note',
        'CIPHERTEXT_TOO_LARGE',
        'Encrypted field "note" exceeds the maximum length of 65536 characters',
      );
    });

    it('refuses a payload that would decompress beyond maxDecompressedSize', async () => {
      const bomb = await app.encryption.encryptToString('a'.repeat(50_000), { compress: true });
      expect(bomb.length).toBeLessThan(1000);
      expectRejection(
        await rejectionOf(fields.decryptFields({ note: bomb }, Order)),
        'note',
        'DECOMPRESSION_LIMIT',
        'Encrypted field "note" decompresses beyond the allowed size',
      );
    });

    it('reports the first refused field in document order', async () => {
      const body = await orderBody();
      body.note = 'tampered';
      (body.customer as Record<string, unknown>).email = 'tampered';
      expect((await rejectionOf(fields.decryptFields(body, Order))).field).toBe('note');
    });

    it('refuses a body nesting a recursive class deeper than 64 levels', async () => {
      class TreeNode {
        @Encrypted() label?: string;
        @Type(() => TreeNode) children?: TreeNode[];
      }
      let body: Record<string, unknown> = {};
      for (let i = 0; i < 70; i++) body = { children: [body] };
      const error = await rejectionOf(fields.decryptFields(body, TreeNode));
      expect(error.reason).toBe('INVALID_TYPE');
      expect(error.message).toBe("Value nests deeper than 64 levels: its @Encrypted() fields can't all be reached");
    });
  });

  describe('decryptBody', () => {
    it('decrypts a { ciphertext } envelope to the JSON value it carries', async () => {
      const value = { email: 'a@b.c', items: [1, 2] };
      expect(await fields.decryptBody({ ciphertext: await app.encryption.encryptToString(value) })).toEqual(value);
      const bound = await app.encryption.encryptToString(value, { context: 'signup' });
      expect(await fields.decryptBody({ ciphertext: bound }, { context: 'signup' })).toEqual(value);
    });

    it('refuses any other shape', async () => {
      const ciphertext = await app.encryption.encryptToString({});
      for (const body of [undefined, null, 'text', [ciphertext], {}, { ciphertext: 5 }, { ciphertext, extra: 1 }]) {
        expectRejection(
          await rejectionOf(fields.decryptBody(body)),
          'body',
          'INVALID_TYPE',
          'Encrypted body must be a JSON object of the form { "ciphertext": "<text>" }',
        );
      }
    });

    it('refuses bad ciphertexts, bytes and oversized bodies', async () => {
      expectRejection(
        await rejectionOf(fields.decryptBody({ ciphertext: 'AAAA' })),
        'body',
        'DECRYPTION_FAILED',
        'Encrypted body could not be decrypted',
      );
      expectRejection(
        await rejectionOf(fields.decryptBody({ ciphertext: await app.encryption.encryptToString(Buffer.from('x')) })),
        'body',
        'INVALID_TYPE',
        'Encrypted body does not decrypt to a JSON value',
      );
      expectRejection(
        await rejectionOf(fields.decryptBody({ ciphertext: 'x'.repeat(33) }, { maxLength: 32 })),
        'body',
        'CIPHERTEXT_TOO_LARGE',
        'Encrypted body exceeds the maximum length of 32 characters',
      );
    });
  });
});
