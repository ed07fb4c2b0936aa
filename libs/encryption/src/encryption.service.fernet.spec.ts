import { randomBytes } from 'node:crypto';

import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';

import { ManualClock } from '../../../test/fixtures/operations/manual-clock.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { fernetDecrypt, fernetEncrypt, fernetTimestamp, generateFernetKey } from './crypto/fernet.js';
import { Encrypted } from './decorators/encrypted.decorator.js';
import { EncryptionModule } from './encryption.module.js';
import { DecryptionError, EncryptionInputError } from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import { FieldEncryptionService } from './field-encryption/field-encryption.service.js';
import { EncryptionHealthIndicator, EncryptionHealthModule } from './health/index.js';
import type { EncryptionEvent } from './interfaces/encryption-event.interface.js';
import type { EncryptionModuleOptions } from './interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterEach(() => apps.closeAll());

const START = Date.UTC(2030, 0, 1);
const FERNET_TOKEN = /^gAAAAA[A-Za-z0-9_-]+={0,2}$/;

/** A Fernet-mode service on a manual clock; asymmetric encryption is off, it has nothing to do with Fernet. */
async function fernetApp(options: EncryptionModuleOptions = {}) {
  const clock = new ManualClock(START);
  const app = await apps.create({
    algorithm: 'fernet',
    enableAsymmetric: false,
    clock,
    keyPropagation: { delayMs: 0 },
    ...options,
  });
  return { ...app, clock };
}

async function rejection(attempt: Promise<unknown>): Promise<Error> {
  return attempt.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: Error) => error,
  );
}

async function expectGenericFailure(attempt: Promise<unknown>): Promise<void> {
  const error = await rejection(attempt);
  expect(error.constructor).toBe(DecryptionError);
  expect(error.message).toBe('Decryption failed');
}

const flip = (token: string, at: number) => token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);

describe("EncryptionService with algorithm: 'fernet'", () => {
  describe('tokens', () => {
    test('encryptToString makes a standard token, encrypt its binary form; the exported active key opens both', async () => {
      const { encryption, keys } = await fernetApp();
      const token = await encryption.encryptToString('hello fernet');
      expect(token).toMatch(FERNET_TOKEN);
      const [activeKey] = keys.exportFernetKeys();
      expect(fernetDecrypt(activeKey, token).toString()).toBe('hello fernet');
      expect(fernetTimestamp(activeKey, token)).toEqual(new Date(START));

      const binary = await encryption.encrypt(Buffer.from([1, 2, 3]));
      expect(binary[0]).toBe(0x80);
      expect(
        fernetDecrypt(
          activeKey,
          binary.toString('base64url') + '='.repeat((4 - (binary.toString('base64url').length % 4)) % 4),
        ),
      ).toEqual(Buffer.from([1, 2, 3]));
    });

    test('decrypt returns bytes, or a string or JSON when asked; both forms are read', async () => {
      const { encryption } = await fernetApp();
      const text = await encryption.encryptToString('text ✓');
      expect(await encryption.decrypt(text)).toEqual(Buffer.from('text ✓'));
      expect(await encryption.decrypt(text, { as: 'string' })).toBe('text ✓');
      expect(await encryption.decrypt(text, { as: 'buffer' })).toEqual(Buffer.from('text ✓'));

      const value = { id: 7, tags: ['a', null], ok: true };
      expect(await encryption.decrypt(await encryption.encrypt(value), { as: 'json' })).toEqual(value);
      expect(await encryption.decrypt(await encryption.encryptToString(42), { as: 'json' })).toBe(42);
      const bytes = randomBytes(1000);
      expect(await encryption.decrypt(await encryption.encrypt(bytes))).toEqual(bytes);
      // Text that isn't what was asked for is refused like any bad token.
      await expectGenericFailure(encryption.decrypt(await encryption.encryptToString('not json'), { as: 'json' }));
      await expectGenericFailure(encryption.decrypt(await encryption.encrypt(Buffer.from([0xff])), { as: 'string' }));
    });

    test('a context or an explicit key is refused at encryption, not ignored', async () => {
      const { encryption } = await fernetApp();
      for (const [options, what] of [
        [{ context: 'users.ssn' }, 'an encryption context'],
        [{ key: randomBytes(32) }, 'an explicit key'],
      ] as const) {
        for (const attempt of [encryption.encrypt('x', options), encryption.encryptToString('x', options)]) {
          const error = await rejection(attempt);
          expect(error).toBeInstanceOf(EncryptionInputError);
          expect(error.message).toBe(MESSAGES.FERNET_OPTION_UNSUPPORTED(what));
        }
      }
    });

    test('a context at decryption refuses the token: it cannot have been bound to it', async () => {
      const { encryption } = await fernetApp();
      await expectGenericFailure(encryption.decrypt(await encryption.encryptToString('x'), { context: 'users.ssn' }));
    });

    test('a changed character, truncation or a foreign key is a DecryptionError', async () => {
      const { encryption } = await fernetApp();
      const token = await encryption.encryptToString('tamper me');
      for (const at of [1, 10, 30, Math.floor(token.length / 2), token.length - 5])
        await expectGenericFailure(encryption.decrypt(flip(token, at)));
      await expectGenericFailure(encryption.decrypt(token.slice(0, -4)));
      await expectGenericFailure(encryption.decrypt(fernetEncrypt(generateFernetKey(), Buffer.from('stranger'))));
      await expectGenericFailure(encryption.decrypt(Buffer.from(token, 'base64url').subarray(0, 60)));
    });

    test('operations are reported with the algorithm fernet', async () => {
      const { encryption, events } = await fernetApp();
      const seen: EncryptionEvent[] = [];
      events.subscribe((event) => seen.push(event));
      const token = await encryption.encryptToString('x');
      await encryption.decrypt(token);
      await encryption.decrypt(flip(token, 20)).catch(() => undefined);
      expect(
        seen
          .filter((event) => event.type === 'operation')
          .map((event) => [event.operation, event.algorithm, event.result, event.errorCode]),
      ).toEqual([
        ['encrypt', 'fernet', 'success', undefined],
        ['decrypt', 'fernet', 'success', undefined],
        ['decrypt', 'fernet', 'failure', 'DECRYPTION_FAILED'],
      ]);
    });

    test('counts encryptions on the active key, so usage-based rotation still works', async () => {
      const { encryption, keys } = await fernetApp();
      await encryption.encryptToString('a');
      await encryption.encrypt('b');
      expect(keys.listKeys()[0].encryptions).toBe(2);
    });
  });

  describe('TTL', () => {
    test('fernetTtlSeconds refuses older tokens and tokens from more than 60 s in the future', async () => {
      const { encryption, clock } = await fernetApp({ fernetTtlSeconds: 60 });
      const token = await encryption.encryptToString('fresh');
      clock.advance(60_000);
      expect(await encryption.decrypt(token, { as: 'string' })).toBe('fresh');
      clock.advance(1_000);
      await expectGenericFailure(encryption.decrypt(token));

      clock.advance(-61_000 - 61_000); // the token now looks 61 s in the future
      await expectGenericFailure(encryption.decrypt(token));
      clock.advance(1_000);
      expect(await encryption.decrypt(token, { as: 'string' })).toBe('fresh');
    });

    test('a per-call fernetTtlSeconds overrides the module option, either way', async () => {
      const { encryption, clock } = await fernetApp({ fernetTtlSeconds: 60 });
      const token = await encryption.encryptToString('x');
      clock.advance(120_000);
      await expectGenericFailure(encryption.decrypt(token));
      expect(await encryption.decrypt(token, { fernetTtlSeconds: 120, as: 'string' })).toBe('x');
      await expectGenericFailure(encryption.decrypt(token, { fernetTtlSeconds: 119 }));
    });

    test('without a TTL, age is not checked (as in Python)', async () => {
      const { encryption, clock } = await fernetApp();
      const token = await encryption.encryptToString('old');
      clock.advance(10 * 365 * 24 * 3600 * 1000);
      expect(await encryption.decrypt(token, { as: 'string' })).toBe('old');
    });

    test('an invalid per-call TTL is an EncryptionInputError', async () => {
      const { encryption } = await fernetApp();
      const token = await encryption.encryptToString('x');
      for (const ttl of [-1, 1.5, Number.NaN]) {
        const error = await rejection(encryption.decrypt(token, { fernetTtlSeconds: ttl }));
        expect(error).toBeInstanceOf(EncryptionInputError);
        expect(error.message).toBe(MESSAGES.INVALID_FERNET_TTL);
      }
    });
  });

  describe('rotation (MultiFernet)', () => {
    test('tokens of previous keys still decrypt; new tokens use the new key; exportFernetKeys lists active first', async () => {
      const { encryption, keys } = await fernetApp();
      const oldToken = await encryption.encryptToString('before');
      const [oldKey] = keys.exportFernetKeys();
      await keys.rotate();
      const exported = keys.exportFernetKeys();
      expect(exported).toHaveLength(2);
      expect(exported[1]).toBe(oldKey);

      expect(await encryption.decrypt(oldToken, { as: 'string' })).toBe('before');
      const newToken = await encryption.encryptToString('after');
      expect(fernetDecrypt(exported[0], newToken).toString()).toBe('after');
      expect(() => fernetDecrypt(oldKey, newToken)).toThrow(DecryptionError);
    });

    test('rotateFernetToken re-encrypts to the active key, keeping the timestamp and the form it was given', async () => {
      const { encryption, keys, clock } = await fernetApp({ fernetTtlSeconds: 3600 });
      const oldToken = await encryption.encryptToString({ v: 1 });
      const oldBinary = await encryption.encrypt('binary');
      const [oldKey] = keys.exportFernetKeys();
      clock.advance(1800_000);
      await keys.rotate();
      const [newKey] = keys.exportFernetKeys();

      const rotated = await encryption.rotateFernetToken(oldToken);
      expect(rotated).toMatch(FERNET_TOKEN);
      expect(rotated).not.toBe(oldToken);
      expect(fernetTimestamp(newKey, rotated)).toEqual(new Date(START));
      expect(() => fernetDecrypt(oldKey, rotated)).toThrow(DecryptionError);
      expect(await encryption.decrypt(rotated, { as: 'json' })).toEqual({ v: 1 });

      const rotatedBinary = await encryption.rotateFernetToken(oldBinary);
      expect(Buffer.isBuffer(rotatedBinary) && rotatedBinary[0]).toBe(0x80);
      expect(await encryption.decrypt(rotatedBinary, { as: 'string' })).toBe('binary');

      // The TTL still counts from the first encryption: rotation didn't make the token younger.
      clock.advance(1801_000);
      await expectGenericFailure(encryption.decrypt(rotated));
    });

    test('rotateFernetToken refuses what is not a valid token of the ring', async () => {
      const { encryption } = await fernetApp();
      await expectGenericFailure(encryption.rotateFernetToken(fernetEncrypt(generateFernetKey(), Buffer.from('x'))));
      await expectGenericFailure(
        encryption.rotateFernetToken(await apps.create().then((other) => other.encryption.encryptToString('native'))),
      );
    });

    test('a retired key no longer opens its tokens', async () => {
      const { encryption, keys } = await fernetApp();
      const first = keys.activeKey.id;
      const token = await encryption.encryptToString('x');
      await keys.rotate();
      await keys.retireKey(first);
      await expectGenericFailure(encryption.decrypt(token));
      await keys.restoreKey(first);
      expect(await encryption.decrypt(token, { as: 'string' })).toBe('x');
    });

    test("another instance's rotation: its new tokens decrypt here after a reload on the unknown token", async () => {
      const keyStore = Object.assign(new InMemoryKeyStore(), { watch: undefined });
      const masterKey = randomBytes(32);
      const options = { keyStore, masterKey, unknownKeyReloadIntervalMs: 0 } as const;
      const here = await fernetApp(options);
      const there = await fernetApp(options);
      await there.keys.rotate();
      const token = await there.encryption.encryptToString('from there');
      expect(await here.encryption.decrypt(token, { as: 'string' })).toBe('from there');
    });
  });

  describe('whatever the algorithm, decrypt reads Fernet tokens of the ring', () => {
    test('an AES-256-GCM service decrypts tokens made with its exported keys, and tokens of an earlier fernet mode', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const fernet = await fernetApp({ keyStore, masterKey });
      const token = await fernet.encryption.encryptToString('made in fernet mode');
      await fernet.close();

      const gcm = await apps.create({ keyStore, masterKey, enableAsymmetric: false });
      expect(await gcm.encryption.decrypt(token, { as: 'string' })).toBe('made in fernet mode');
      const external = fernetEncrypt(gcm.keys.exportFernetKeys()[0], Buffer.from('made elsewhere'));
      expect(await gcm.encryption.decrypt(external, { as: 'string' })).toBe('made elsewhere');
      expect(await gcm.encryption.decrypt(await gcm.encryption.encryptToString('native'))).toBe('native');
    });
  });

  describe('integrations', () => {
    class Profile {
      @Encrypted() email!: string;
      @Encrypted() age!: number;
      @Encrypted() address!: { city: string };
      @Encrypted() avatar!: Buffer;
    }

    test('field-level encryption: fields travel as Fernet tokens and decrypt to their declared types', async () => {
      const { module } = await fernetApp();
      const fields = module.get(FieldEncryptionService);
      const profile = Object.assign(new Profile(), {
        email: 'a@b.c',
        age: 37,
        address: { city: 'Paris' },
        avatar: Buffer.from([9, 8]),
      });
      const encrypted = await fields.encryptFields(profile);
      for (const key of ['email', 'age', 'address', 'avatar'] as const) expect(encrypted[key]).toMatch(FERNET_TOKEN);
      const decrypted = await fields.decryptFields(Object.assign(new Profile(), { ...encrypted }));
      expect({ ...decrypted }).toEqual({
        email: 'a@b.c',
        age: 37,
        address: { city: 'Paris' },
        avatar: Buffer.from([9, 8]),
      });
    });

    test('the health self-test passes in fernet mode', async () => {
      const module = await Test.createTestingModule({
        imports: [
          TerminusModule.forRoot({ logger: false }),
          EncryptionModule.forRoot({ isGlobal: true, algorithm: 'fernet', enableAsymmetric: false }),
          EncryptionHealthModule,
        ],
      }).compile();
      await module.init();
      try {
        const indicator = module.get(EncryptionHealthIndicator);
        const result = await module.get(HealthCheckService).check([() => indicator.isHealthy('encryption')]);
        expect(result.status).toBe('ok');
      } finally {
        await module.close();
      }
    });
  });
});
