import { generateKeyPairSync, randomBytes } from 'node:crypto';

import type { JWK } from 'jose';
import { compactDecrypt, CompactEncrypt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { unwrapKey } from './crypto/key-wrap.js';
import type { Plaintext } from './crypto/plaintext-codec.js';
import {
  DecryptionError,
  EncryptionConfigError,
  EncryptionInputError,
  FormatDisabledError,
  KeyNotFoundError,
  KeyRetiredError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { EncryptionEvent } from './interfaces/encryption-event.interface.js';
import type { EncryptionModuleOptions } from './interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

interface Booted extends EncryptionTestApp {
  keyStore: InMemoryKeyStore;
  masterKey: Buffer;
}

async function boot(options: EncryptionModuleOptions = {}): Promise<Booted> {
  const keyStore = new InMemoryKeyStore();
  const masterKey = randomBytes(32);
  return { ...(await apps.create({ keyStore, masterKey, ...options })), keyStore, masterKey };
}

/** The ring's private JWK for `kid`, opened with the master key as only a test would: the library never returns it. */
async function ringPrivateJwk(app: Booted, kid: string): Promise<JWK> {
  const pair = (await app.keyStore.load())!.keyPairs!.find((candidate) => candidate.kid === kid)!;
  return JSON.parse(unwrapKey(app.masterKey, kid, pair.wrappedPrivateKey)!.toString('utf8')) as JWK;
}

/** A JWE made with jose directly, as a browser or another service would. */
async function joseEncrypt(
  jwk: JWK,
  payload: Uint8Array | string,
  header: Record<string, unknown> = { alg: jwk.alg, enc: 'A256GCM', kid: jwk.kid },
): Promise<string> {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return new CompactEncrypt(bytes).setProtectedHeader(header as never).encrypt(await importJWK(jwk, jwk.alg));
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
  expect(error).toBeInstanceOf(DecryptionError);
  expect(error.constructor).toBe(DecryptionError);
  expect(error.message).toBe('Decryption failed');
}

const VALUES: Array<[string, Plaintext, string]> = [
  ['a string', 'héllo wörld ✓', 'text/plain;charset=utf-8'],
  ['an empty string', '', 'text/plain;charset=utf-8'],
  ['a JSON object', { name: 'Ada', tags: ['x', 1, null], nested: { ok: true } }, 'json'],
  ['a number', 42.5, 'json'],
  ['null', null, 'json'],
  ['a lone surrogate (travels as JSON)', 'a\uD800b', 'json'],
  ['bytes', randomBytes(100), 'octet-stream'],
];

const ALGORITHMS: Array<{ name: string; options: EncryptionModuleOptions; alg: string }> = [
  {
    name: 'RSA-OAEP-256 / RSA 2048',
    options: { asymmetricAlgorithm: 'RSA-OAEP-256', rsaKeySize: 2048 },
    alg: 'RSA-OAEP-256',
  },
  {
    name: 'RSA-OAEP-256 / RSA 3072',
    options: { asymmetricAlgorithm: 'RSA-OAEP-256', rsaKeySize: 3072 },
    alg: 'RSA-OAEP-256',
  },
  {
    name: 'RSA-OAEP-256 / RSA 4096',
    options: { asymmetricAlgorithm: 'RSA-OAEP-256', rsaKeySize: 4096 },
    alg: 'RSA-OAEP-256',
  },
  { name: 'ECDH-ES+A256KW / X25519', options: { asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519' }, alg: 'ECDH-ES+A256KW' },
  { name: 'ECDH-ES+A256KW / P-256', options: { asymmetricAlgorithm: 'ECDH-ES+A256KW-P256' }, alg: 'ECDH-ES+A256KW' },
];

// One service per algorithm for the whole file: RSA 4096 key generation takes seconds.
const booted = new Map<string, Booted>();
beforeAll(async () => {
  for (const { name, options } of ALGORITHMS) booted.set(name, await boot(options));
}, 180_000);

describe.each(ALGORITHMS)('EncryptionService JWE with $name', ({ name, alg }) => {
  const app = () => booted.get(name)!;

  test.each(VALUES)(
    'encryptForPublicKey → jose.compactDecrypt with the ring private key: %s',
    async (_label, value, cty) => {
      const { encryption, keys } = app();
      const token = await encryption.encryptForPublicKey(value);
      const kid = keys.activePublicJwk().kid!;
      const { epk, ...header } = decodeProtectedHeader(token);
      expect(header).toEqual({ alg, enc: 'A256GCM', kid, cty });
      // ECDH-ES carries the sender's ephemeral public key; RSA-OAEP has nothing else.
      if (alg === 'ECDH-ES+A256KW') expect(epk).toMatchObject({ kty: keys.activePublicJwk().kty });
      else expect(epk).toBeUndefined();

      const { plaintext } = await compactDecrypt(token, await importJWK(await ringPrivateJwk(app(), kid), alg));
      const bytes = Buffer.from(plaintext);
      if (cty === 'json') expect(JSON.parse(bytes.toString('utf8'))).toEqual(value);
      else if (cty === 'octet-stream') expect(bytes).toEqual(value);
      else expect(bytes.toString('utf8')).toBe(value);
    },
  );

  test.each(VALUES)('round trip through decrypt restores the type: %s', async (_label, value) => {
    const { encryption } = app();
    const token = await encryption.encryptForPublicKey(value);
    const decrypted = await encryption.decrypt(token);
    expect(decrypted).toEqual(value);
    if (Buffer.isBuffer(value)) expect(Buffer.isBuffer(decrypted)).toBe(true);
  });

  test('jose.CompactEncrypt to publicJwks() → decrypt, typed by cty', async () => {
    const { encryption, keys } = app();
    const [jwk] = keys.publicJwks().keys;
    expect(jwk.alg).toBe(alg);
    const value = { customer: 'Grace', id: 7 };
    const json = JSON.stringify(value);
    expect(
      await encryption.decrypt(await joseEncrypt(jwk, json, { alg, enc: 'A256GCM', kid: jwk.kid, cty: 'json' })),
    ).toEqual(value);
    expect(
      await encryption.decrypt(
        await joseEncrypt(jwk, json, { alg, enc: 'A256GCM', kid: jwk.kid, cty: 'application/json' }),
      ),
    ).toEqual(value);
    // No cty: bytes, unless the caller says what they are.
    const untyped = await joseEncrypt(jwk, json);
    expect(await encryption.decrypt(untyped)).toEqual(Buffer.from(json));
    expect(await encryption.decrypt(untyped, { as: 'json' })).toEqual(value);
    expect(await encryption.decrypt(untyped, { as: 'string' })).toBe(json);
  });

  test('a large payload (1 MiB) is encrypted hybrid, both ways', async () => {
    const { encryption, keys } = app();
    const big = randomBytes(1024 * 1024);
    // Buffer#equals: Jest's deep equality walks a large Buffer byte by byte.
    expect((await encryption.decrypt<Buffer>(await encryption.encryptForPublicKey(big))).equals(big)).toBe(true);
    expect((await encryption.decrypt<Buffer>(await joseEncrypt(keys.activePublicJwk(), big))).equals(big)).toBe(true);
  });
});

describe('EncryptionService JWE behaviour', () => {
  const x25519 = () => booted.get('ECDH-ES+A256KW / X25519')!;

  describe('payload types from cty', () => {
    test.each([
      ['text/plain', 'plain text', 'plain text'],
      ['text/plain; charset=UTF-8', 'plain text', 'plain text'],
      ['application/vnd.example+json', '{"a":1}', { a: 1 }],
      ['APPLICATION/JSON', '[1,2]', [1, 2]],
      ['application/octet-stream', 'raw', Buffer.from('raw')],
      ['JWT', 'a.b.c', Buffer.from('a.b.c')],
    ])('cty %p', async (cty, payload, expected) => {
      const jwk = x25519().keys.activePublicJwk();
      const token = await joseEncrypt(jwk, payload, { alg: jwk.alg, enc: 'A256GCM', kid: jwk.kid, cty });
      expect(await x25519().encryption.decrypt(token)).toEqual(expected);
    });

    test('payloads that are not what their type says are a DecryptionError', async () => {
      const jwk = x25519().keys.activePublicJwk();
      const header = (cty: string) => ({ alg: jwk.alg, enc: 'A256GCM', kid: jwk.kid, cty });
      await expectGenericFailure(x25519().encryption.decrypt(await joseEncrypt(jwk, '{not json', header('json'))));
      await expectGenericFailure(
        x25519().encryption.decrypt(await joseEncrypt(jwk, Buffer.from([0xff, 0xfe]), header('text/plain'))),
      );
      await expectGenericFailure(x25519().encryption.decrypt(await joseEncrypt(jwk, '{not json'), { as: 'json' }));
    });

    test("an unknown 'as' is an EncryptionInputError, before any decryption", async () => {
      const token = await x25519().encryption.encryptForPublicKey('x');
      const error = await rejection(x25519().encryption.decrypt(token, { as: 'yaml' as never }));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.INVALID_UNTYPED_AS);
    });
  });

  describe('recipients', () => {
    test('any RSA, X25519 or P-256 public JWK; only its private key decrypts; this ring reports the kid unknown', async () => {
      const { encryption } = x25519();
      const recipients: Array<[string, Awaited<ReturnType<typeof generateKeyPair>>]> = [
        ['RSA-OAEP-256', await generateKeyPair('RSA-OAEP-256', { extractable: true })],
        ['ECDH-ES+A256KW', await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true })],
      ];
      for (const [alg, { publicKey, privateKey }] of recipients) {
        const jwk = await exportJWK(publicKey); // no kid, no alg: both are filled in
        const token = await encryption.encryptForPublicKey({ to: alg }, jwk);
        const header = decodeProtectedHeader(token);
        expect(header).toMatchObject({ alg, enc: 'A256GCM', cty: 'json' });
        expect(typeof header.kid).toBe('string');
        expect(JSON.parse(Buffer.from((await compactDecrypt(token, privateKey)).plaintext).toString())).toEqual({
          to: alg,
        });
        const error = await rejection(encryption.decrypt(token));
        expect(error).toBeInstanceOf(KeyNotFoundError);
        expect((error as KeyNotFoundError).keyId).toBe(header.kid);
      }
    });

    test('a private JWK is used by its public half only', async () => {
      const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
      const privateJwk = { ...(await exportJWK(privateKey)), kid: 'mine' };
      const token = await x25519().encryption.encryptForPublicKey('secret', privateJwk);
      expect(decodeProtectedHeader(token).kid).toBe('mine');
      expect(Buffer.from((await compactDecrypt(token, privateKey)).plaintext).toString()).toBe('secret');
      expect((await exportJWK(publicKey)).x).toBe(privateJwk.x);
    });

    test.each([
      ['a symmetric key', { kty: 'oct', k: randomBytes(32).toString('base64url') }],
      ['a P-384 key', { kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA' }],
      ['an Ed25519 key', { kty: 'OKP', crv: 'Ed25519', x: randomBytes(32).toString('base64url') }],
      ['a signing key', { kty: 'OKP', crv: 'X25519', x: randomBytes(32).toString('base64url'), use: 'sig' }],
      [
        'an algorithm mismatch',
        { kty: 'OKP', crv: 'X25519', x: randomBytes(32).toString('base64url'), alg: 'RSA-OAEP-256' },
      ],
      ['an empty kid', { kty: 'OKP', crv: 'X25519', x: randomBytes(32).toString('base64url'), kid: '' }],
      ['not an object', 'jwk'],
      ['null', null],
    ])('%s is an EncryptionInputError', async (_name, jwk) => {
      const error = await rejection(x25519().encryption.encryptForPublicKey('x', jwk as unknown as JWK));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.INVALID_PUBLIC_JWK);
    });

    test('an RSA key under 2048 bits is refused by name', async () => {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const jwk = publicKey.export({ format: 'jwk' }) as JWK;
      const error = await rejection(x25519().encryption.encryptForPublicKey('x', jwk));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.INVALID_JWE_KEY('RSA-OAEP-256'));
    });

    test('a value with no byte form is the same EncryptionInputError as encrypt()', async () => {
      const error = await rejection(x25519().encryption.encryptForPublicKey(Number.NaN));
      expect(error).toBeInstanceOf(EncryptionInputError);
      expect(error.message).toBe(MESSAGES.NON_FINITE_NUMBER);
    });
  });

  describe('rejections', () => {
    let token: string;
    beforeAll(async () => {
      token = await x25519().encryption.encryptForPublicKey({ secret: 'value' });
    });

    test('a changed character in the encrypted key, IV, ciphertext or tag is a DecryptionError', async () => {
      const segments = token.split('.');
      for (const index of [1, 2, 3, 4]) {
        const changed = [...segments];
        const at = Math.floor(changed[index].length / 2);
        changed[index] =
          changed[index].slice(0, at) + (changed[index][at] === 'A' ? 'B' : 'A') + changed[index].slice(at + 1);
        await expectGenericFailure(x25519().encryption.decrypt(changed.join('.')));
      }
    });

    test('a changed protected header is a DecryptionError (the header is the AAD)', async () => {
      const [, ...rest] = token.split('.');
      const header = { ...decodeProtectedHeader(token), cty: 'text/plain' };
      const forged = [Buffer.from(JSON.stringify(header)).toString('base64url'), ...rest].join('.');
      await expectGenericFailure(x25519().encryption.decrypt(forged));
    });

    test.each([
      ['truncated', (t: string) => t.split('.').slice(0, 4).join('.')],
      ['an extra segment', (t: string) => `${t}.AAAA`],
      ['whitespace inside', (t: string) => t.replace('.', ' .')],
      ['padding', (t: string) => t.replace('.', '=.')],
      ['only dots', () => '....'],
      ['a single dot', () => 'a.b'],
    ])('%s is a DecryptionError', async (_name, change) => {
      await expectGenericFailure(x25519().encryption.decrypt(change(token)));
    });

    test('algorithms outside the allowlist are refused (compression: crypto/jwe.spec.ts)', async () => {
      const jwk = x25519().keys.activePublicJwk();
      const direct = await new CompactEncrypt(Buffer.from('x'))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: jwk.kid })
        .encrypt(randomBytes(32));
      await expectGenericFailure(x25519().encryption.decrypt(direct));
      const cbc = await joseEncrypt(jwk, 'x', { alg: jwk.alg, enc: 'A128CBC-HS256', kid: jwk.kid });
      await expectGenericFailure(x25519().encryption.decrypt(cbc));
    });

    test('a context is refused: a compact JWE cannot be bound to one', async () => {
      await expectGenericFailure(x25519().encryption.decrypt(token, { context: 'users.ssn' }));
    });

    test('failures are reported as decrypt operations labelled JWE', async () => {
      const { encryption, events } = x25519();
      const seen: EncryptionEvent[] = [];
      const unsubscribe = events.subscribe((event) => seen.push(event));
      try {
        await encryption.decrypt(token);
        // A different (canonical) ending for the tag segment, whatever the original ended with.
        const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'QA' : 'AA'}`;
        await encryption.decrypt(tampered).catch(() => undefined);
        await encryption.encryptForPublicKey('x');
      } finally {
        unsubscribe();
      }
      const operations = seen.filter((event) => event.type === 'operation');
      expect(operations.map((event) => [event.operation, event.algorithm, event.result, event.errorCode])).toEqual([
        ['decrypt', 'JWE', 'success', undefined],
        ['decrypt', 'JWE', 'failure', 'DECRYPTION_FAILED'],
        ['encrypt', 'JWE', 'success', undefined],
      ]);
    });
  });

  describe('key pairs over time', () => {
    test('a JWE to the previous pair still decrypts after rotateKeyPair; a retired pair refuses by policy', async () => {
      const app = await boot({ asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519', keyRetention: { maxPreviousKeys: 1 } });
      const first = await app.encryption.encryptForPublicKey('first');
      const firstByJose = await joseEncrypt(app.keys.activePublicJwk(), 'first, by jose');
      await app.keys.rotateKeyPair();
      expect(await app.encryption.decrypt(first)).toBe('first');
      expect(await app.encryption.decrypt(firstByJose, { as: 'string' })).toBe('first, by jose');
      const second = await app.encryption.encryptForPublicKey('second');
      expect(decodeProtectedHeader(second).kid).toBe(app.keys.activePublicJwk().kid);

      await app.keys.rotateKeyPair();
      const error = await rejection(app.encryption.decrypt(first));
      expect(error).toBeInstanceOf(KeyRetiredError);
      expect(error).toBeInstanceOf(DecryptionError);
      expect(await app.encryption.decrypt(second)).toBe('second');
    });

    test('a JWE to a pair another instance just made decrypts: the unknown kid reloads the ring', async () => {
      // Without watch, A hears of B's rotation only by reloading.
      const keyStore = Object.assign(new InMemoryKeyStore(), { watch: undefined });
      const masterKey = randomBytes(32);
      const options = {
        keyStore,
        masterKey,
        asymmetricAlgorithm: 'ECDH-ES+A256KW-X25519',
        unknownKeyReloadIntervalMs: 0,
      } as const;
      const a = await apps.create(options);
      const b = await apps.create(options);
      await b.keys.rotateKeyPair();
      const token = await b.encryption.encryptForPublicKey({ from: 'b' });
      expect(a.keys.publicJwks().keys).toHaveLength(1); // A hasn't seen the rotation
      expect(await a.encryption.decrypt(token)).toEqual({ from: 'b' });
      expect(a.keys.publicJwks().keys).toHaveLength(2);
    });

    test('a JWE without kid is tried with the active pair', async () => {
      const jwk = x25519().keys.activePublicJwk();
      const token = await joseEncrypt(jwk, '{"no":"kid"}', { alg: jwk.alg, enc: 'A256GCM', cty: 'json' });
      expect(await x25519().encryption.decrypt(token)).toEqual({ no: 'kid' });
    });
  });

  describe('enableAsymmetric: false', () => {
    const DISABLED = MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric');

    test('encryptForPublicKey is an EncryptionConfigError, a well-formed JWE to decrypt a FormatDisabledError; the native format is unaffected', async () => {
      const disabled = await boot({ enableAsymmetric: false });
      const someJwk = x25519().keys.activePublicJwk();
      const token = await x25519().encryption.encryptForPublicKey('x');
      for (const attempt of [disabled.encryption.encryptForPublicKey('x'), disabled.encryption.encryptForPublicKey('x', someJwk)]) {
        const error = await rejection(attempt);
        expect(error).toBeInstanceOf(EncryptionConfigError);
        expect(error.message).toBe(DISABLED);
      }
      // Someone sent a JWE to a service that doesn't take them: the input is refused, the config is fine.
      const refused = await rejection(disabled.encryption.decrypt(token));
      expect(refused).toBeInstanceOf(FormatDisabledError);
      expect(refused).toBeInstanceOf(DecryptionError);
      expect(refused).toMatchObject({ code: 'FORMAT_DISABLED', message: DISABLED });
      // A string that only contains dots is no use of the feature: just undecryptable.
      await expectGenericFailure(disabled.encryption.decrypt('not.a.jwe'));
      expect(await disabled.encryption.decrypt(await disabled.encryption.encryptToString('native'))).toBe('native');
    });
  });
});
