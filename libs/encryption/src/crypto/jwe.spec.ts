import type { JsonWebKey } from 'node:crypto';
import {
  constants,
  createCipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';

import { jest } from '@jest/globals';
import fc from 'fast-check';
import type { CryptoKey, DecryptOptions, JWK } from 'jose';
import { calculateJwkThumbprint, compactDecrypt, CompactEncrypt, decodeProtectedHeader, generateKeyPair, importJWK } from 'jose';

import { DecryptionError, EncryptionInputError, KeyNotFoundError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { JweAlgorithm, JweKey, JweKeyPair, JweKeyResolver, JweKeySpec } from './jwe.js';
import { buildJwks, generateJweKeyPair, JWE_ALGORITHMS, JWE_CONTENT_ENCRYPTIONS, jweDecrypt, jweEncrypt } from './jwe.js';

const SPECS: Array<{ name: string; spec: JweKeySpec }> = [
  { name: 'RSA-OAEP-256 / RSA 2048', spec: { alg: 'RSA-OAEP-256', modulusLength: 2048 } },
  { name: 'RSA-OAEP-256 / RSA 3072', spec: { alg: 'RSA-OAEP-256', modulusLength: 3072 } },
  { name: 'RSA-OAEP-256 / RSA 4096', spec: { alg: 'RSA-OAEP-256', modulusLength: 4096 } },
  { name: 'ECDH-ES+A256KW / X25519', spec: { alg: 'ECDH-ES+A256KW', crv: 'X25519' } },
  { name: 'ECDH-ES+A256KW / P-256', spec: { alg: 'ECDH-ES+A256KW', crv: 'P-256' } },
];

// Generated once per file: RSA 4096 takes seconds.
const pairs = new Map<string, JweKeyPair>();
let otherRsa: JweKeyPair;
let otherX25519: JweKeyPair;
beforeAll(async () => {
  for (const { name, spec } of SPECS) pairs.set(name, await generateJweKeyPair(spec));
  otherRsa = await generateJweKeyPair({ alg: 'RSA-OAEP-256' });
  otherX25519 = await generateJweKeyPair({ alg: 'ECDH-ES+A256KW' });
}, 120_000);

const pair = (name: string) => pairs.get(name)!;
const rsa2048 = () => pair('RSA-OAEP-256 / RSA 2048');
const x25519 = () => pair('ECDH-ES+A256KW / X25519');

/** A resolver over a set of pairs that records what it was asked. */
function resolverFor(...keyPairs: JweKeyPair[]): JweKeyResolver & jest.Mock<JweKeyResolver> {
  return jest.fn<JweKeyResolver>((kid) => keyPairs.find((p) => p.kid === kid)?.privateJwk);
}

async function expectGenericFailure(attempt: Promise<unknown>): Promise<void> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DecryptionError);
  expect(error).not.toBeInstanceOf(KeyNotFoundError);
  expect(error).toMatchObject({ message: MESSAGES.DECRYPTION_FAILED, code: 'DECRYPTION_FAILED' });
  expect((error as Error).cause).toBeUndefined();
}

const segmentsOf = (token: string) => token.split('.');
const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('generateJweKeyPair', () => {
  test.each(SPECS)('$name: public and private JWK named by their RFC 7638 thumbprint', async ({ name, spec }) => {
    const { kid, alg, publicJwk, privateJwk } = pair(name);
    expect(alg).toBe(spec.alg);
    expect(kid).toBe(await calculateJwkThumbprint(publicJwk, 'sha256'));
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(publicJwk).toMatchObject({ kid, alg: spec.alg, use: 'enc' });
    expect(privateJwk).toMatchObject({ kid, alg: spec.alg, use: 'enc', d: expect.any(String) });
    expect(publicJwk.d).toBeUndefined();
    if (spec.alg === 'RSA-OAEP-256') {
      expect(publicJwk.kty).toBe('RSA');
      expect(Buffer.from(publicJwk.n!, 'base64url').length * 8).toBe(spec.modulusLength);
    } else {
      expect(publicJwk.crv).toBe(spec.crv);
      expect(publicJwk.kty).toBe(spec.crv === 'X25519' ? 'OKP' : 'EC');
    }
  });

  it('defaults to RSA 2048 and X25519, and refuses other algorithms', async () => {
    expect(Buffer.from(otherRsa.publicJwk.n!, 'base64url')).toHaveLength(256);
    expect(otherX25519.publicJwk.crv).toBe('X25519');
    await expect(generateJweKeyPair({ alg: 'RSA1_5' } as unknown as JweKeySpec)).rejects.toThrow(EncryptionInputError);
    const weak = { alg: 'RSA-OAEP-256', modulusLength: 1024 } as unknown as JweKeySpec;
    await expect(generateJweKeyPair(weak)).rejects.toThrow(new EncryptionInputError(MESSAGES.INVALID_JWE_KEY('RSA-OAEP-256')));
    const otherCurve = { alg: 'ECDH-ES+A256KW', crv: 'P-384' } as unknown as JweKeySpec;
    await expect(generateJweKeyPair(otherCurve)).rejects.toThrow(EncryptionInputError);
  });
});

describe('jweEncrypt / jweDecrypt round trips', () => {
  test.each(SPECS)('$name: any bytes round-trip, with a standard protected header', async ({ name, spec }) => {
    const p = pair(name);
    const resolver = resolverFor(p);
    const runs = spec.alg === 'RSA-OAEP-256' ? 5 : 20;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (plaintext) => {
        const token = await jweEncrypt(plaintext, { key: p.publicJwk, kid: p.kid, alg: p.alg });
        expect(await jweDecrypt(token, resolver)).toEqual(Buffer.from(plaintext));
      }),
      { numRuns: runs },
    );
    expect(resolver).toHaveBeenCalledWith(p.kid, p.alg);

    const token = await jweEncrypt(Buffer.from('header check'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const header = decodeProtectedHeader(token);
    expect(segmentsOf(token)).toHaveLength(5);
    if (spec.alg === 'RSA-OAEP-256') {
      expect(header).toEqual({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: p.kid });
      expect(Buffer.from(segmentsOf(token)[1], 'base64url')).toHaveLength(spec.modulusLength! / 8);
    } else {
      expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: p.kid, epk: { crv: spec.crv } });
      expect(Buffer.from(segmentsOf(token)[1], 'base64url')).toHaveLength(40); // AES key wrap of a 256-bit CEK
    }
    expect(Buffer.from(segmentsOf(token)[2], 'base64url')).toHaveLength(12);
    expect(Buffer.from(segmentsOf(token)[4], 'base64url')).toHaveLength(16);
  });

  test.each(SPECS)('$name: keys work as JWK, CryptoKey or KeyObject on both sides', async ({ name }) => {
    const p = pair(name);
    const publicForms: JweKey[] = [
      p.publicJwk,
      (await importJWK(p.publicJwk, p.alg)) as CryptoKey,
      createPublicKey({ key: p.publicJwk as JsonWebKey, format: 'jwk' }),
    ];
    const privateForms: JweKey[] = [
      p.privateJwk,
      (await importJWK(p.privateJwk, p.alg)) as CryptoKey,
      createPrivateKey({ key: p.privateJwk as JsonWebKey, format: 'jwk' }),
    ];
    for (const [i, publicKey] of publicForms.entries()) {
      const token = await jweEncrypt(Buffer.from(`form ${i}`), { key: publicKey, kid: p.kid, alg: p.alg });
      for (const privateKey of privateForms) {
        expect((await jweDecrypt(token, () => privateKey)).toString()).toBe(`form ${i}`);
      }
    }
  });

  it('finds the right key among several by kid', async () => {
    const all = [...pairs.values()];
    const resolver = resolverFor(...all);
    for (const p of all) {
      const token = await jweEncrypt(Buffer.from(p.kid), { key: p.publicJwk, kid: p.kid, alg: p.alg });
      expect((await jweDecrypt(token, resolver)).toString()).toBe(p.kid);
    }
  });

  it('accepts an async resolver', async () => {
    const p = x25519();
    const token = await jweEncrypt(Buffer.from('async'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    expect((await jweDecrypt(token, async () => p.privateJwk)).toString()).toBe('async');
  });
});

describe('interoperability with jose used directly', () => {
  test.each(SPECS)('$name: jweEncrypt tokens decrypt with jose.compactDecrypt', async ({ name }) => {
    const p = pair(name);
    const token = await jweEncrypt(Buffer.from('to jose'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const { plaintext, protectedHeader } = await compactDecrypt(token, p.privateJwk);
    expect(Buffer.from(plaintext).toString()).toBe('to jose');
    expect(protectedHeader).toMatchObject({ alg: p.alg, enc: 'A256GCM', kid: p.kid });
  });

  test.each(SPECS)('$name: jose.CompactEncrypt tokens decrypt with jweDecrypt', async ({ name }) => {
    const p = pair(name);
    const token = await new CompactEncrypt(Buffer.from('from jose'))
      .setProtectedHeader({ alg: p.alg, enc: 'A256GCM', kid: p.kid })
      .encrypt(p.publicJwk);
    expect((await jweDecrypt(token, resolverFor(p))).toString()).toBe('from jose');
  });

  it('passes an undefined kid to the resolver when the producer set none', async () => {
    const p = rsa2048();
    const token = await new CompactEncrypt(Buffer.from('no kid')).setProtectedHeader({ alg: p.alg, enc: 'A256GCM' }).encrypt(p.publicJwk);
    const resolver = jest.fn<JweKeyResolver>(() => p.privateJwk);
    expect((await jweDecrypt(token, resolver)).toString()).toBe('no kid');
    expect(resolver).toHaveBeenCalledWith(undefined, 'RSA-OAEP-256');
  });

  it('accepts other AEAD content encryptions only when asked to', async () => {
    const p = x25519();
    const token = await new CompactEncrypt(Buffer.from('cbc-hs'))
      .setProtectedHeader({ alg: p.alg, enc: 'A128CBC-HS256', kid: p.kid })
      .encrypt(p.publicJwk);
    await expectGenericFailure(jweDecrypt(token, resolverFor(p)));
    const options = { contentEncryptionAlgorithms: ['A256GCM', 'A128CBC-HS256'] as const };
    expect((await jweDecrypt(token, resolverFor(p), options)).toString()).toBe('cbc-hs');
    await expect(jweDecrypt(token, resolverFor(p), { contentEncryptionAlgorithms: ['A128KW' as 'A128GCM'] })).rejects.toThrow(
      new EncryptionInputError(MESSAGES.UNSUPPORTED_JWE_ALGORITHM('content encryption', JWE_CONTENT_ENCRYPTIONS)),
    );
    await expect(jweDecrypt(token, resolverFor(p), { contentEncryptionAlgorithms: [] })).rejects.toThrow(EncryptionInputError);
  });
});

describe('rejections', () => {
  test.each(SPECS)('$name: a bit flip in any of the five segments is rejected', async ({ name, spec }) => {
    const p = pair(name);
    const token = await jweEncrypt(Buffer.from('tamper with me, please'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const resolver = resolverFor(p);
    const runs = spec.alg === 'RSA-OAEP-256' ? 4 : 10;
    for (let segment = 0; segment < 5; segment++) {
      await fc.assert(
        fc.asyncProperty(fc.nat(), async (position) => {
          const parts = segmentsOf(token);
          const bytes = Buffer.from(parts[segment], 'base64url');
          const bit = position % (bytes.length * 8);
          bytes[bit >> 3] ^= 1 << (bit & 7);
          parts[segment] = bytes.toString('base64url');
          const attempt = jweDecrypt(parts.join('.'), resolver);
          if (segment === 0) {
            // A flipped header may now name an unknown kid: still a DecryptionError, never plaintext.
            await expect(attempt).rejects.toBeInstanceOf(DecryptionError);
          } else {
            await expectGenericFailure(attempt);
          }
        }),
        { numRuns: runs },
      );
    }
  });

  test.each(SPECS)('$name: truncated, emptied and swapped segments are rejected', async ({ name }) => {
    const p = pair(name);
    const resolver = resolverFor(p);
    const a = segmentsOf(await jweEncrypt(Buffer.from('first message'), { key: p.publicJwk, kid: p.kid, alg: p.alg }));
    const b = segmentsOf(await jweEncrypt(Buffer.from('other message'), { key: p.publicJwk, kid: p.kid, alg: p.alg }));
    for (let segment = 0; segment < 5; segment++) {
      const truncated = [...a];
      truncated[segment] = Buffer.from(a[segment], 'base64url').subarray(1).toString('base64url');
      const emptied = [...a];
      emptied[segment] = '';
      const swapped = [...a];
      swapped[segment] = b[segment];
      // RSA-OAEP headers carry no per-token data, so two tokens' headers are identical: nothing to swap.
      const variants = swapped[segment] === a[segment] ? [truncated, emptied] : [truncated, emptied, swapped];
      for (const parts of variants) await expectGenericFailure(jweDecrypt(parts.join('.'), resolver));
    }
    // A header with an extra member changes the AAD.
    const header = decodeProtectedHeader(a.join('.'));
    await expectGenericFailure(jweDecrypt([b64json({ ...header, x: 1 }), ...a.slice(1)].join('.'), resolver));
    // The original is still fine.
    expect((await jweDecrypt(a.join('.'), resolver)).toString()).toBe('first message');
  });

  it('rejects texts that spell a valid token differently (non-canonical base64url, padding, whitespace)', async () => {
    const p = x25519();
    const token = await jweEncrypt(Buffer.from('canonical'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const parts = segmentsOf(token);
    expect(parts[4]).toHaveLength(22); // 16 bytes: the last character carries 4 unused bits
    const last = parts[4].at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = alphabet[alphabet.indexOf(last) + 1];
    const nonCanonical = [...parts.slice(0, 4), parts[4].slice(0, -1) + sameBytes].join('.');
    expect(Buffer.from(nonCanonical.split('.')[4], 'base64url')).toEqual(Buffer.from(parts[4], 'base64url'));
    for (const variant of [nonCanonical, `${token}==`, `${token}\n`, ` ${token}`, token.replace('.', '. ')]) {
      await expectGenericFailure(jweDecrypt(variant, resolverFor(p)));
    }
  });

  test.each(SPECS)('$name: a different key of the same kind is rejected', async ({ name, spec }) => {
    const p = pair(name);
    const token = await jweEncrypt(Buffer.from('wrong key'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const sameCurve = spec.alg === 'ECDH-ES+A256KW' ? await generateJweKeyPair(spec) : otherRsa;
    await expectGenericFailure(jweDecrypt(token, () => ({ ...sameCurve.privateJwk, kid: p.kid })));
  });

  it('rejects a key of the wrong type or for another algorithm', async () => {
    const rsa = rsa2048();
    const ec = x25519();
    const rsaToken = await jweEncrypt(Buffer.from('x'), { key: rsa.publicJwk, kid: rsa.kid, alg: rsa.alg });
    await expectGenericFailure(jweDecrypt(rsaToken, () => ec.privateJwk));
    await expectGenericFailure(jweDecrypt(rsaToken, () => rsa.publicJwk)); // public, not private
    await expectGenericFailure(jweDecrypt(rsaToken, () => ({ ...rsa.privateJwk, alg: 'RSA-OAEP' })));
    await expectGenericFailure(jweDecrypt(rsaToken, () => randomBytes(32) as unknown as JweKey));
  });

  it('rejects an unknown kid with KeyNotFoundError naming it', async () => {
    const p = rsa2048();
    const token = await jweEncrypt(Buffer.from('x'), { key: p.publicJwk, kid: 'unknown-key', alg: p.alg });
    const error = await jweDecrypt(token, resolverFor(p)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyNotFoundError);
    expect(error).toMatchObject({ keyId: 'unknown-key', code: 'KEY_NOT_FOUND', message: MESSAGES.KEY_NOT_FOUND });
  });

  it("lets the resolver's own errors through unchanged", async () => {
    const p = rsa2048();
    const token = await jweEncrypt(Buffer.from('x'), { key: p.publicJwk, kid: p.kid, alg: p.alg });
    const outage = new Error('key store unavailable');
    await expect(
      jweDecrypt(token, () => {
        throw outage;
      }),
    ).rejects.toBe(outage);
  });

  describe('algorithms outside the allowlist are refused before any key lookup', () => {
    type Made = { token: string; key: JweKey | Uint8Array; joseOptions?: DecryptOptions };
    const seal = (alg: string, enc: string, encryptKey: Parameters<CompactEncrypt['encrypt']>[0], kid = 'k') =>
      new CompactEncrypt(Buffer.from('x')).setProtectedHeader({ alg, enc, kid }).encrypt(encryptKey);
    const withSecret = async (alg: string, bytes: Uint8Array): Promise<Made> => ({ key: bytes, token: await seal(alg, 'A256GCM', bytes) });
    const withPair = async (alg: string, options: { crv?: string; extractable?: boolean }): Promise<Made> => {
      const { publicKey, privateKey } = await generateKeyPair(alg, options);
      return { key: privateKey, token: await seal(alg, 'A256GCM', publicKey) };
    };
    const cases: Array<{ title: string; make: () => Promise<Made> }> = [
      { title: "'dir' with A256GCM", make: () => withSecret('dir', randomBytes(32)) },
      { title: "'A128KW' with A256GCM", make: () => withSecret('A128KW', randomBytes(16)) },
      { title: "'A256GCMKW' with A256GCM", make: () => withSecret('A256GCMKW', randomBytes(32)) },
      { title: "'RSA-OAEP' (SHA-1) with A256GCM", make: () => withPair('RSA-OAEP', { extractable: true }) },
      { title: "'ECDH-ES' (direct agreement) with A256GCM", make: () => withPair('ECDH-ES', { crv: 'X25519' }) },
      { title: "'ECDH-ES+A128KW' with A256GCM", make: () => withPair('ECDH-ES+A128KW', { crv: 'P-256' }) },
      {
        title: "'PBES2-HS256+A128KW' with A256GCM",
        make: async () => ({
          ...(await withSecret('PBES2-HS256+A128KW', Buffer.from('correct horse battery staple'))),
          // jose itself opens PBES2 only when explicitly allowed.
          joseOptions: { keyManagementAlgorithms: ['PBES2-HS256+A128KW'] },
        }),
      },
      {
        title: "'RSA-OAEP-256' with A128GCM (content encryption not allowed by default)",
        make: async () => {
          const p = rsa2048();
          return { key: p.privateJwk, token: await seal(p.alg, 'A128GCM', p.publicJwk, p.kid) };
        },
      },
    ];

    test.each(cases)('$title: a valid token jose itself opens, rejected here', async ({ make }) => {
      const { token, key, joseOptions } = await make();
      expect(Buffer.from((await compactDecrypt(token, key, joseOptions)).plaintext).toString()).toBe('x');
      const resolver = jest.fn<JweKeyResolver>(() => key as JweKey);
      await expectGenericFailure(jweDecrypt(token, resolver));
      expect(resolver).not.toHaveBeenCalled();
    });

    it("'RSA1_5' (hand-made with node:crypto, as jose no longer produces it)", async () => {
      const p = rsa2048();
      const header = b64json({ alg: 'RSA1_5', enc: 'A256GCM', kid: p.kid });
      const cek = randomBytes(32);
      const iv = randomBytes(12);
      const publicKey = createPublicKey({ key: p.publicJwk as JsonWebKey, format: 'jwk' });
      const encryptedKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
      const cipher = createCipheriv('aes-256-gcm', cek, iv).setAAD(Buffer.from(header, 'ascii'));
      const ciphertext = Buffer.concat([cipher.update('x'), cipher.final()]);
      const token = [header, encryptedKey, iv, ciphertext, cipher.getAuthTag()]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.');
      const resolver = jest.fn<JweKeyResolver>(() => p.privateJwk);
      await expectGenericFailure(jweDecrypt(token, resolver));
      expect(resolver).not.toHaveBeenCalled();
    });

    it("'none' and a missing alg", async () => {
      const p = x25519();
      const valid = segmentsOf(await jweEncrypt(Buffer.from('x'), { key: p.publicJwk, kid: p.kid, alg: p.alg }));
      const resolver = resolverFor(p);
      for (const header of [{ alg: 'none', enc: 'A256GCM', kid: p.kid }, { enc: 'A256GCM', kid: p.kid }]) {
        await expectGenericFailure(jweDecrypt([b64json(header), ...valid.slice(1)].join('.'), resolver));
      }
      expect(resolver).not.toHaveBeenCalled();
    });
  });

  it("refuses 'zip' (compressed) tokens without touching a key", async () => {
    const p = rsa2048();
    const token = await new CompactEncrypt(Buffer.from('a'.repeat(1000)))
      .setProtectedHeader({ alg: p.alg, enc: 'A256GCM', kid: p.kid, zip: 'DEF' })
      .encrypt(p.publicJwk);
    expect(Buffer.from((await compactDecrypt(token, p.privateJwk)).plaintext).toString()).toBe('a'.repeat(1000));
    const resolver = resolverFor(p);
    await expectGenericFailure(jweDecrypt(token, resolver));
    expect(resolver).not.toHaveBeenCalled();
  });

  it('refuses unknown critical header parameters and non-string kids', async () => {
    const p = x25519();
    const critical = await new CompactEncrypt(Buffer.from('x'))
      .setProtectedHeader({ alg: p.alg, enc: 'A256GCM', kid: p.kid, crit: ['exp'], exp: 1 })
      .encrypt(p.publicJwk, { crit: { exp: true } });
    await expectGenericFailure(jweDecrypt(critical, resolverFor(p)));
    const numericKid = await new CompactEncrypt(Buffer.from('x'))
      .setProtectedHeader({ alg: p.alg, enc: 'A256GCM', kid: 7 as unknown as string })
      .encrypt(p.publicJwk);
    await expectGenericFailure(jweDecrypt(numericKid, () => p.privateJwk));
  });

  it('throws nothing but DecryptionError for malformed strings, and never calls the resolver', async () => {
    const resolver = jest.fn<JweKeyResolver>(() => x25519().privateJwk);
    const fixed = [
      ...['', '.', '....', 'a.b.c.d', 'a.b.c.d.e.f', 'not a token', '{"protected":"e30"}', 'e30.a.b.c.d'],
      'eyJhbGciOiJSU0EtT0FFUC0yNTYifQ....',
    ];
    for (const text of fixed) await expectGenericFailure(jweDecrypt(text, resolver));
    for (const value of [undefined, null, 5, {}, Buffer.from('a.b.c.d.e')]) {
      await expectGenericFailure(jweDecrypt(value as unknown as string, resolver));
    }
    const base64url = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''));
    const segment = fc.string({ unit: base64url, maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.array(segment, { minLength: 5, maxLength: 5 }).map((s) => s.join('.'))),
        async (text) => expectGenericFailure(jweDecrypt(text, resolver)),
      ),
      { numRuns: 200 },
    );
    expect(resolver).not.toHaveBeenCalled();
  });
});

describe('jweEncrypt input validation', () => {
  it('refuses unsupported algorithms, empty kids, non-byte plaintexts and unusable keys', async () => {
    const rsa = rsa2048();
    const ec = x25519();
    const encrypt = (plaintext: unknown, key: unknown, kid: unknown, alg: unknown) =>
      jweEncrypt(plaintext as Uint8Array, { key: key as JweKey, kid: kid as string, alg: alg as JweAlgorithm });
    for (const alg of ['dir', 'RSA1_5', 'A128KW', 'RSA-OAEP', 'ECDH-ES']) {
      await expect(encrypt(Buffer.from('x'), rsa.publicJwk, rsa.kid, alg)).rejects.toThrow(
        new EncryptionInputError(MESSAGES.UNSUPPORTED_JWE_ALGORITHM('key management', JWE_ALGORITHMS)),
      );
    }
    await expect(encrypt(Buffer.from('x'), rsa.publicJwk, '', rsa.alg)).rejects.toThrow(new EncryptionInputError(MESSAGES.INVALID_JWE_KID));
    await expect(encrypt('text', rsa.publicJwk, rsa.kid, rsa.alg)).rejects.toThrow(new EncryptionInputError(MESSAGES.NOT_BYTES));
    await expect(encrypt(Buffer.from('x'), ec.publicJwk, rsa.kid, 'RSA-OAEP-256')).rejects.toThrow(
      new EncryptionInputError(MESSAGES.INVALID_JWE_KEY('RSA-OAEP-256')),
    );
    await expect(encrypt(Buffer.from('x'), rsa.publicJwk, rsa.kid, 'ECDH-ES+A256KW')).rejects.toThrow(EncryptionInputError);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await expect(encrypt(Buffer.from('x'), small.publicKey, 'k', 'RSA-OAEP-256')).rejects.toThrow(EncryptionInputError);
    await expect(encrypt(Buffer.from('x'), rsa.privateJwk, rsa.kid, rsa.alg)).rejects.toThrow(EncryptionInputError);
    await expect(encrypt(Buffer.from('x'), { kty: 'RSA', n: 'AQAB', e: 'AQAB' }, 'k', 'RSA-OAEP-256')).rejects.toThrow(EncryptionInputError);
  });
});

describe('buildJwks', () => {
  it('publishes only public members, even from private JWKs, and the result encrypts to the private key', async () => {
    const all = [...pairs.values()];
    const jwks = buildJwks(all.map((p) => p.privateJwk));
    expect(jwks.keys).toHaveLength(all.length);
    const text = JSON.stringify(jwks);
    for (const member of ['"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"', '"k"', '"ext"', '"key_ops"']) expect(text).not.toContain(member);
    for (const [i, p] of all.entries()) {
      expect(jwks.keys[i]).toEqual(p.publicJwk);
      const published = jwks.keys[i] as JWK;
      const token = await jweEncrypt(Buffer.from('via jwks'), { key: published, kid: published.kid!, alg: published.alg as JweAlgorithm });
      expect((await jweDecrypt(token, resolverFor(p))).toString()).toBe('via jwks');
    }
  });

  it('refuses symmetric keys, keys without kid, unknown key types and incomplete keys', () => {
    const p = x25519();
    const bad = [
      { kty: 'oct', k: 'AAAA', kid: 'k' },
      { ...p.publicJwk, kid: undefined },
      { ...p.publicJwk, kid: '' },
      { ...p.publicJwk, kty: 'constructor' },
      { ...p.publicJwk, kty: '__proto__' },
      { kty: 'RSA', n: 'AQAB', kid: 'k' },
      null,
    ];
    for (const jwk of bad) expect(() => buildJwks([jwk as JWK])).toThrow(new EncryptionInputError(MESSAGES.INVALID_JWKS_KEY));
    expect(buildJwks([])).toEqual({ keys: [] });
  });
});
