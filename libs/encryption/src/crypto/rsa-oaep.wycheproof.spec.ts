import { constants, createPrivateKey, generateKeyPairSync, privateDecrypt } from 'node:crypto';

import fc from 'fast-check';

import { hex, loadVectors } from '../../../../test/support/vectors.js';
import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import { rsaOaepDecrypt, rsaOaepEncrypt, rsaOaepMaxMessageSize } from './rsa-oaep.js';

interface OaepTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  ct: string;
  label: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface OaepGroup {
  keySize: number;
  sha: string;
  mgf: string;
  mgfSha: string;
  privateKeyPem: string;
  privateKeyJwk: Record<string, string>;
  tests: OaepTest[];
}
interface OaepFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: OaepGroup[];
}

const file = loadVectors<OaepFile>('wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json');
const group = file.testGroups[0];
const privateKey = createPrivateKey(group.privateKeyPem);
const cases = group.tests.map((t) => ({ ...t, title: `tcId ${t.tcId}${t.comment ? ` (${t.comment})` : ''} [${t.flags.join(', ')}]` }));

function expectGenericFailure(attempt: () => unknown): void {
  let caught: unknown;
  try {
    attempt();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DecryptionError);
  expect(caught).toMatchObject({ message: MESSAGES.DECRYPTION_FAILED, code: 'DECRYPTION_FAILED' });
  expect((caught as Error).cause).toBeUndefined();
}

describe('RSA-OAEP-SHA256 Wycheproof vectors', () => {
  it('covers the whole file: one SHA-256/MGF1-SHA-256 2048-bit group, every test', () => {
    expect(file.testGroups).toHaveLength(1);
    expect(group).toMatchObject({ keySize: 2048, sha: 'SHA-256', mgf: 'MGF1', mgfSha: 'SHA-256' });
    expect(cases).toHaveLength(file.numberOfTests);
    expect(cases.filter((t) => t.result === 'acceptable')).toHaveLength(0);
  });

  test.each(cases.filter((t) => t.result === 'valid'))('valid $title decrypts to msg', (t) => {
    expect(rsaOaepDecrypt(privateKey, hex(t.ct), hex(t.label)).toString('hex')).toBe(t.msg);
  });

  test.each(cases.filter((t) => t.result === 'invalid'))('invalid $title is rejected with DecryptionError', (t) => {
    expectGenericFailure(() => rsaOaepDecrypt(privateKey, hex(t.ct), hex(t.label)));
  });

  it('decrypts the same vectors with the key given as PEM text or as JWK', () => {
    const withLabel = cases.find((t) => t.tcId === 9)!;
    for (const key of [group.privateKeyPem, group.privateKeyJwk]) {
      expect(rsaOaepDecrypt(key, hex(withLabel.ct), hex(withLabel.label)).toString('hex')).toBe(withLabel.msg);
    }
  });

  it('binds the label: a labelled vector fails without it, an unlabelled one fails with one', () => {
    const labelled = cases.find((t) => t.tcId === 9)!;
    const plain = cases.find((t) => t.tcId === 4)!;
    expectGenericFailure(() => rsaOaepDecrypt(privateKey, hex(labelled.ct)));
    expectGenericFailure(() => rsaOaepDecrypt(privateKey, hex(plain.ct), Buffer.from([0])));
  });
});

describe('rsaOaepEncrypt / rsaOaepDecrypt', () => {
  const { publicKey, privateKey: ownPrivate } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('round-trips any message up to the OAEP limit (190 bytes for 2048 bits), with any label', () => {
    expect(rsaOaepMaxMessageSize(publicKey)).toBe(190);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 190 }), fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), (msg, label) => {
        const ct = rsaOaepEncrypt(publicKey, msg, label);
        expect(ct).toHaveLength(256);
        expect(rsaOaepDecrypt(ownPrivate, ct, label)).toEqual(Buffer.from(msg));
      }),
      { numRuns: 60 },
    );
  });

  it('produces standard OAEP-SHA256 that node:crypto decrypts directly', () => {
    const ct = rsaOaepEncrypt(publicKey.export({ type: 'spki', format: 'pem' }).toString(), Buffer.from('interop'), Buffer.from('lbl'));
    const direct = privateDecrypt(
      { key: ownPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('lbl') },
      ct,
    );
    expect(direct.toString()).toBe('interop');
  });

  it('encrypts to the public half of a private key, and is randomised', () => {
    const a = rsaOaepEncrypt(ownPrivate, Buffer.from('x'));
    expect(a).not.toEqual(rsaOaepEncrypt(ownPrivate, Buffer.from('x')));
    expect(rsaOaepDecrypt(ownPrivate, a).toString()).toBe('x');
  });

  it('rejects a wrong key, any bit flip and wrong lengths with the generic DecryptionError', () => {
    const ct = rsaOaepEncrypt(publicKey, Buffer.from('secret'));
    expectGenericFailure(() => rsaOaepDecrypt(other.privateKey, ct));
    fc.assert(
      fc.property(fc.nat(ct.length * 8 - 1), (bit) => {
        const copy = Buffer.from(ct);
        copy[bit >> 3] ^= 1 << (bit & 7);
        expectGenericFailure(() => rsaOaepDecrypt(ownPrivate, copy));
      }),
      { numRuns: 40 },
    );
    for (const bad of [Buffer.alloc(0), ct.subarray(1), Buffer.concat([Buffer.alloc(1), ct]), 'text' as unknown as Buffer]) {
      expectGenericFailure(() => rsaOaepDecrypt(ownPrivate, bad));
    }
  });

  it('refuses messages over the limit and unusable keys as EncryptionInputError', () => {
    expect(() => rsaOaepEncrypt(publicKey, Buffer.alloc(191))).toThrow(new EncryptionInputError(MESSAGES.RSA_OAEP_MESSAGE_TOO_LONG(190)));
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => rsaOaepEncrypt(small.publicKey, Buffer.from('x'))).toThrow(
      new EncryptionInputError(MESSAGES.INVALID_RSA_KEY('public', 2048)),
    );
    expect(() => rsaOaepEncrypt(ec.publicKey, Buffer.from('x'))).toThrow(EncryptionInputError);
    expect(() => rsaOaepEncrypt('not a pem', Buffer.from('x'))).toThrow(EncryptionInputError);
    expect(() => rsaOaepDecrypt(publicKey, Buffer.alloc(256))).toThrow(new EncryptionInputError(MESSAGES.INVALID_RSA_KEY('private', 2048)));
    expect(() => rsaOaepDecrypt(small.privateKey, Buffer.alloc(128))).toThrow(EncryptionInputError);
    expect(() => rsaOaepEncrypt(publicKey, 'x' as unknown as Buffer)).toThrow(new EncryptionInputError(MESSAGES.NOT_BYTES));
  });
});
