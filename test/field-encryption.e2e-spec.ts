import 'reflect-metadata';

import { randomBytes } from 'node:crypto';

import { Test } from '@nestjs/testing';
import type { EncryptionEvent } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService } from 'nestjs-encryption';
import type { Response } from 'supertest';
import request from 'supertest';

import type { FieldEncryptionApp, HttpAdapterName } from './fixtures/field-encryption/create-field-encryption-app.js';
import { createFieldEncryptionApp } from './fixtures/field-encryption/create-field-encryption-app.js';
import { UsersController } from './fixtures/field-encryption/field-encryption.controllers.js';
import { UserEntity } from './fixtures/field-encryption/field-encryption.models.js';

const ADAPTERS: HttpAdapterName[] = ['express', 'fastify'];

type Json = Record<string, unknown>;

/** The exact 400 of a refused encrypted field. */
const rejection = (field: string, reason: string, message: string) => ({
  statusCode: 400,
  error: 'Bad Request',
  message,
  field,
  reason,
});

const undecryptable = (field: string) => rejection(field, 'DECRYPTION_FAILED', `Encrypted field "${field}" could not be decrypted`);

const rejectedEvents = (events: EncryptionEvent[]) => events.filter((event) => event.type === 'request-rejected');

/** A ciphertext with one character of its authenticated part changed. */
function tamper(ciphertext: string, at = Math.floor(ciphertext.length / 2)): string {
  return ciphertext.slice(0, at) + (ciphertext[at] === 'A' ? 'B' : 'A') + ciphertext.slice(at + 1);
}

describe.each(ADAPTERS)('field-level encryption over HTTP (%s)', (adapter) => {
  describe('with global ClassSerializerInterceptor + EncryptionInterceptor and a global ValidationPipe', () => {
    let fixture: FieldEncryptionApp;
    let encryption: EncryptionService;
    const http = () => request(fixture.app.getHttpServer());
    const encrypt = (value: Parameters<EncryptionService['encryptToString']>[0], context?: string) =>
      encryption.encryptToString(value, context === undefined ? {} : { context });

    beforeAll(async () => {
      fixture = await createFieldEncryptionApp(adapter, 'global', { encryption: { maxDecompressedSize: 100_000 } });
      encryption = fixture.encryption;
    });
    afterAll(() => fixture.close());
    beforeEach(() => {
      fixture.events.length = 0;
    });

    async function expectUser(body: Json, user: UserEntity): Promise<void> {
      expect(typeof body.email).toBe('string');
      expect(body.email).not.toBe(user.email);
      expect(await encryption.decrypt(body.email as string)).toBe(user.email);
      if (user.ssn === null) expect(body.ssn).toBeNull();
      else expect(await encryption.decrypt(body.ssn as string, { context: 'users.ssn' })).toBe(user.ssn);
      expect(body.id).toBe(user.id);
      expect(body.name).toBe(user.name);
      // class-transformer ran on the encrypted copy: @Exclude() and @Expose() still apply.
      expect(body).not.toHaveProperty('password');
      expect(body.displayName).toBe(`${user.name} (#${user.id})`);
      if (user.address) {
        const address = body.address as Json;
        expect(await encryption.decrypt(address.street as string)).toBe(user.address.street);
        expect(address.city).toBe(user.address.city);
      } else {
        expect(body).not.toHaveProperty('address');
      }
      const previous = body.previousAddresses as Json[];
      expect(previous).toHaveLength(user.previousAddresses.length);
      for (const [index, address] of user.previousAddresses.entries()) {
        expect(await encryption.decrypt(previous[index].street as string)).toBe(address.street);
        expect(previous[index].city).toBe(address.city);
      }
    }

    describe('responses', () => {
      it('encrypts the marked fields of a returned instance, nested ones and arrays of them, and nothing else', async () => {
        const res = await http().get('/users/one').expect(200);
        const users = fixture.app.get(UsersController).users;
        await expectUser(res.body as Json, users[0]);
        expect(Object.keys(res.body as Json).sort()).toEqual(
          ['address', 'displayName', 'email', 'id', 'name', 'previousAddresses', 'ssn'].sort(),
        );
      });

      it("never modifies the handler's objects", async () => {
        await http().get('/users/one').expect(200);
        await http().get('/users/list').expect(200);
        const [ada] = fixture.app.get(UsersController).users;
        expect(ada).toBeInstanceOf(UserEntity);
        expect(ada.email).toBe('ada@example.com');
        expect(ada.ssn).toBe('078-05-1120');
        expect(ada.address?.street).toBe('12 Analytical Way');
        expect(ada.previousAddresses[0].street).toBe('1 Engine St');
      });

      it('encrypts an array a Promise resolves to, leaving null and missing fields as they are', async () => {
        const res = await http().get('/users/list').expect(200);
        const users = fixture.app.get(UsersController).users;
        const body = res.body as Json[];
        expect(body).toHaveLength(2);
        await expectUser(body[0], users[0]);
        await expectUser(body[1], users[1]);
        expect(body[1].ssn).toBeNull();
      });

      it('encrypts what an Observable emits', async () => {
        const res = await http().get('/users/observable').expect(200);
        await expectUser(res.body as Json, fixture.app.get(UsersController).users[0]);
      });

      it('finds instances inside plain objects and arrays', async () => {
        const res = await http().get('/users/page').expect(200);
        const users = fixture.app.get(UsersController).users;
        const body = res.body as { items: Json[]; total: number; meta: { owner: Json } };
        expect(body.total).toBe(2);
        await expectUser(body.items[0], users[0]);
        await expectUser(body.items[1], users[1]);
        await expectUser(body.meta.owner, users[1]);
      });

      it('round-trips fields of every JSON type to the same type', async () => {
        const res = await http().get('/users/types').expect(200);
        const body = res.body as Json;
        const expected: Json = {
          text: 'héllo 🔐',
          integer: 42,
          decimal: -0.5,
          yes: true,
          no: false,
          object: { a: 1, b: [true, null, 'x'], c: { d: 'e' } },
          list: [1, 'two', { three: 3 }, [4]],
          empty: '',
        };
        for (const [key, value] of Object.entries(expected)) {
          expect(typeof body[key]).toBe('string');
          expect(await encryption.decrypt(body[key] as string)).toEqual(value);
        }
        expect(body.nothing).toBeNull();
        expect(body).not.toHaveProperty('missing');
        expect(body.plain).toBe('not encrypted');
      });

      it('leaves responses without instances alone', async () => {
        const res = await http().get('/users/text').expect(200);
        expect(res.text).toBe('plain text response');
      });
    });

    describe('requests', () => {
      async function customerBody(overrides: Json = {}): Promise<Json> {
        return {
          email: await encrypt('buyer@example.com'),
          name: 'Buyer',
          phone: await encrypt('+1 555 0100'),
          address: { street: await encrypt('5 Market St'), city: 'Springfield' },
          lines: [
            { sku: 'A-1', quantity: await encrypt(2) },
            { sku: 'B-2', quantity: await encrypt(7) },
          ],
          ...overrides,
        };
      }

      it('hands the handler the plaintext of encrypted fields, nested ones and arrays, as a validated DTO', async () => {
        const res = await http().post('/requests/customer').send(await customerBody()).expect(200);
        expect(res.body).toEqual({
          instanceOf: 'CustomerDto',
          value: {
            email: 'buyer@example.com',
            name: 'Buyer',
            phone: '+1 555 0100',
            address: { street: '5 Market St', city: 'Springfield' },
            lines: [
              { sku: 'A-1', quantity: 2 },
              { sku: 'B-2', quantity: 7 },
            ],
          },
        });
        expect(rejectedEvents(fixture.events)).toEqual([]);
      });

      it('leaves null and missing optional encrypted fields as they are', async () => {
        const withNull = await customerBody({ phone: null });
        delete withNull.lines;
        const res = await http().post('/requests/customer').send(withNull).expect(200);
        expect((res.body as { value: Json }).value).toEqual({
          email: 'buyer@example.com',
          name: 'Buyer',
          phone: null,
          address: { street: '5 Market St', city: 'Springfield' },
        });
        const without = await customerBody();
        delete without.phone;
        const res2 = await http().post('/requests/customer').send(without).expect(200);
        expect((res2.body as { value: Json }).value).not.toHaveProperty('phone');
      });

      it('lets the ValidationPipe validate the plaintext: an encrypted non-email gets its 400', async () => {
        const body = await customerBody({ email: await encrypt('not-an-email') });
        const res = await http().post('/requests/customer').send(body).expect(400);
        expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
        expect(res.text).not.toContain(body.email as string);
      });

      it('validates decrypted values nested in arrays', async () => {
        const body = await customerBody();
        (body.lines as Json[])[1].quantity = await encrypt(0);
        const res = await http().post('/requests/customer').send(body).expect(400);
        expect(res.body).toEqual({
          statusCode: 400,
          error: 'Bad Request',
          message: ['lines.1.quantity must not be less than 1'],
        });
      });

      it('decrypts and validates fields of every JSON type', async () => {
        const body = {
          text: await encrypt('text'),
          amount: await encrypt(12.75),
          active: await encrypt(false),
          settings: await encrypt({ theme: 'dark', sizes: [1, 2] }),
          tags: await encrypt(['a', 'b']),
          bound: await encrypt('bound value', 'all-types.bound'),
        };
        const res = await http().post('/requests/types').send(body).expect(200);
        expect(res.body).toEqual({
          instanceOf: 'AllTypesDto',
          value: {
            text: 'text',
            amount: 12.75,
            active: false,
            settings: { theme: 'dark', sizes: [1, 2] },
            tags: ['a', 'b'],
            bound: 'bound value',
          },
        });
      });

      it('decrypts the fields of a nested DTO', async () => {
        const res = await http()
          .post('/requests/order')
          .send({ reference: 'R-1', customer: await customerBody() })
          .expect(200);
        expect((res.body as { value: { customer: Json } }).value.customer.email).toBe('buyer@example.com');
      });

      it('decrypts the property a @Body("customer") parameter reads', async () => {
        const res = await http()
          .post('/requests/customer-property')
          .send({ customer: await customerBody() })
          .expect(200);
        expect((res.body as { value: Json }).value.email).toBe('buyer@example.com');
        const bad = await http()
          .post('/requests/customer-property')
          .send({ customer: await customerBody({ email: 'garbage' }) })
          .expect(400);
        expect(bad.body).toEqual(undecryptable('customer.email'));
      });

      describe('whole-body envelope (@EncryptedBody)', () => {
        it('replaces { ciphertext } with the value it decrypts to, before validation', async () => {
          const signup = { email: 'new@example.com', password: 'correct horse' };
          const res = await http()
            .post('/requests/signup')
            .send({ ciphertext: await encrypt(signup) })
            .expect(200);
          expect(res.body).toEqual({ instanceOf: 'SignupDto', value: signup });
        });

        it('validates the decrypted body', async () => {
          const res = await http()
            .post('/requests/signup')
            .send({ ciphertext: await encrypt({ email: 'nope', password: 'x' }) })
            .expect(400);
          expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
        });

        it('refuses a body that is not an envelope, even a valid plaintext one', async () => {
          const res = await http().post('/requests/signup').send({ email: 'new@example.com', password: 'x' }).expect(400);
          expect(res.body).toEqual(
            rejection('body', 'INVALID_TYPE', 'Encrypted body must be a JSON object of the form { "ciphertext": "<text>" }'),
          );
          expect(rejectedEvents(fixture.events)).toEqual([{ type: 'request-rejected', field: 'body', reason: 'INVALID_TYPE' }]);
        });

        it('checks the bound context and the size limit of the route', async () => {
          const signup = { email: 'new@example.com', password: 'p' };
          await http()
            .post('/requests/signup-bound')
            .send({ ciphertext: await encrypt(signup, 'signup') })
            .expect(200);
          const unbound = await encrypt(signup);
          const res = await http().post('/requests/signup-bound').send({ ciphertext: unbound }).expect(400);
          expect(res.body).toEqual(rejection('body', 'DECRYPTION_FAILED', 'Encrypted body could not be decrypted'));
          expect(res.text).not.toContain(unbound);

          const big = await encrypt({ ...signup, password: randomBytes(1500).toString('hex') }, 'signup');
          expect(big.length).toBeGreaterThan(2048);
          const tooBig = await http().post('/requests/signup-bound').send({ ciphertext: big }).expect(400);
          expect(tooBig.body).toEqual(
            rejection('body', 'CIPHERTEXT_TOO_LARGE', 'Encrypted body exceeds the maximum length of 2048 characters'),
          );
        });
      });
    });

    describe('bad input: 400 naming the field, no ciphertext or plaintext echoed, a request-rejected event', () => {
      async function expectRefused(
        path: string,
        body: Json,
        expected: ReturnType<typeof rejection>,
        eventReason: string = expected.reason,
        secrets: string[] = [],
      ): Promise<void> {
        const res: Response = await http().post(path).send(body).expect(400);
        expect(res.body).toEqual(expected);
        for (const value of Object.values(body)) {
          if (typeof value === 'string' && value.length > 3) expect(res.text).not.toContain(value);
        }
        for (const secret of secrets) expect(res.text).not.toContain(secret);
        expect(rejectedEvents(fixture.events)).toEqual([{ type: 'request-rejected', field: expected.field, reason: eventReason }]);
      }

      const validTypes = async (): Promise<Json> => ({
        text: await encrypt('t'),
        amount: await encrypt(1),
        active: await encrypt(true),
        settings: await encrypt({}),
        tags: await encrypt([]),
      });

      it('not base64', async () => {
        await expectRefused('/requests/types', { ...(await validTypes()), text: '%%% not base64 %%%' }, undecryptable('text'));
      });

      it('truncated', async () => {
        const valid = await encrypt('truncated secret');
        await expectRefused('/requests/types', { ...(await validTypes()), text: valid.slice(0, 40) }, undecryptable('text'));
      });

      it('tampered', async () => {
        const tampered = tamper(await encrypt('tampered secret'));
        await expectRefused('/requests/types', { ...(await validTypes()), text: tampered }, undecryptable('text'));
      });

      it('tampered in a nested array element, named by its path', async () => {
        const customer = {
          email: await encrypt('a@b.co'),
          name: 'n',
          address: { street: await encrypt('s'), city: 'c' },
          lines: [
            { sku: 'x', quantity: await encrypt(1) },
            { sku: 'y', quantity: tamper(await encrypt(2)) },
          ],
        };
        await expectRefused('/requests/customer', customer, undecryptable('lines.1.quantity'));
      });

      it('encrypted under a key this app does not have (the event says KEY_NOT_FOUND, the client does not)', async () => {
        const other = await Test.createTestingModule({ imports: [EncryptionModule.forRoot({})] }).compile();
        await other.init();
        try {
          const foreign = await other.get(EncryptionService).encryptToString('foreign');
          await expectRefused('/requests/types', { ...(await validTypes()), text: foreign }, undecryptable('text'), 'KEY_NOT_FOUND');
        } finally {
          await other.close();
        }
      });

      it('bound to another context', async () => {
        const wrong = await encrypt('bound value', 'other.context');
        await expectRefused('/requests/types', { ...(await validTypes()), bound: wrong }, undecryptable('bound'));
      });

      it('decrypts to another type than the DTO declares', async () => {
        await expectRefused(
          '/requests/types',
          { ...(await validTypes()), text: await encrypt(987654321) },
          rejection('text', 'INVALID_TYPE', 'Encrypted field "text" does not decrypt to a string'),
          'INVALID_TYPE',
          ['987654321'],
        );
        fixture.events.length = 0;
        await expectRefused(
          '/requests/types',
          { ...(await validTypes()), amount: await encrypt('SECRET-PLAINTEXT') },
          rejection('amount', 'INVALID_TYPE', 'Encrypted field "amount" does not decrypt to a number'),
          'INVALID_TYPE',
          ['SECRET-PLAINTEXT'],
        );
      });

      it('not a string where a ciphertext belongs', async () => {
        await expectRefused(
          '/requests/types',
          { ...(await validTypes()), amount: 12345 },
          rejection('amount', 'INVALID_TYPE', 'Encrypted field "amount" must be a ciphertext string'),
          'INVALID_TYPE',
          ['12345'],
        );
      });

      it('longer than the maximum length of the field', async () => {
        const long = await encrypt('x'.repeat(300));
        await expectRefused(
          '/requests/types',
          { ...(await validTypes()), short: long },
          rejection('short', 'CIPHERTEXT_TOO_LARGE', 'Encrypted field "short" exceeds the maximum length of 200 characters'),
        );
      });

      it('decompressing beyond maxDecompressedSize', async () => {
        const bomb = await encryption.encryptToString('A'.repeat(500_000), { compress: true });
        expect(bomb.length).toBeLessThan(2000);
        await expectRefused(
          '/requests/types',
          { ...(await validTypes()), text: bomb },
          rejection('text', 'DECOMPRESSION_LIMIT', 'Encrypted field "text" decompresses beyond the allowed size'),
        );
      });
    });
  });

  describe('with APP_INTERCEPTOR providers and ENCRYPTION_INTERCEPTOR_OPTIONS', () => {
    let fixture: FieldEncryptionApp;
    beforeAll(async () => {
      fixture = await createFieldEncryptionApp(adapter, 'app-interceptor', { interceptor: { maxFieldLength: 400 } });
    });
    afterAll(() => fixture.close());

    it('encrypts responses inside the serializer', async () => {
      const res = await request(fixture.app.getHttpServer()).get('/users/one').expect(200);
      const body = res.body as Json;
      expect(await fixture.encryption.decrypt(body.email as string)).toBe('ada@example.com');
      expect(body).not.toHaveProperty('password');
      expect(body.displayName).toBe('Ada (#1)');
    });

    it('applies the configured default maximum field length', async () => {
      const body = {
        email: await fixture.encryption.encryptToString('a@b.co'),
        name: 'n',
        address: { street: await fixture.encryption.encryptToString('s'), city: 'c' },
      };
      await request(fixture.app.getHttpServer()).post('/requests/customer').send(body).expect(200);
      const long = { ...body, email: await fixture.encryption.encryptToString(`${'x'.repeat(400)}@example.com`) };
      const res = await request(fixture.app.getHttpServer()).post('/requests/customer').send(long).expect(400);
      expect(res.body).toEqual(
        rejection('email', 'CIPHERTEXT_TOO_LARGE', 'Encrypted field "email" exceeds the maximum length of 400 characters'),
      );
      expect(rejectedEvents(fixture.events)).toEqual([{ type: 'request-rejected', field: 'email', reason: 'CIPHERTEXT_TOO_LARGE' }]);
    });
  });

  describe('with @UseInterceptors() on a controller and on a handler, the serializer global', () => {
    let fixture: FieldEncryptionApp;
    const http = () => request(fixture.app.getHttpServer());
    beforeAll(async () => {
      fixture = await createFieldEncryptionApp(adapter, 'scoped');
    });
    afterAll(() => fixture.close());

    const customer = async () => ({
      email: await fixture.encryption.encryptToString('scoped@example.com'),
      name: 'n',
      address: { street: await fixture.encryption.encryptToString('s'), city: 'c' },
    });

    it('controller-level EncryptionInterceptor encrypts responses and decrypts requests', async () => {
      const res = await http().get('/scoped/user').expect(200);
      expect(await fixture.encryption.decrypt((res.body as Json).email as string)).toBe('ada@example.com');
      expect(res.body).not.toHaveProperty('password');
      const posted = await http().post('/scoped/customer').send(await customer()).expect(200);
      expect((posted.body as { value: Json }).value.email).toBe('scoped@example.com');
    });

    it('handler-level EncryptedResponseInterceptor encrypts that response', async () => {
      const res = await http().get('/handler-scoped/user').expect(200);
      const body = res.body as Json;
      expect(await fixture.encryption.decrypt(body.email as string)).toBe('ada@example.com');
      expect(await fixture.encryption.decrypt((body.address as Json).street as string)).toBe('12 Analytical Way');
    });

    it('without an interceptor nothing is decrypted, so validation sees the ciphertext', async () => {
      const res = await http().post('/handler-scoped/customer').send(await customer()).expect(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
    });
  });
});
