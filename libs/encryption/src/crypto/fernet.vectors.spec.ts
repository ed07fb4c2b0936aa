import { loadVectors } from '../../../../test/support/vectors.js';
import { DecryptionError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import { fernetDecrypt, fernetEncrypt } from './fernet.js';

/** The acceptance vectors of the Fernet spec (vectors/fernet/README.md describes the fields). */
interface GenerateVector {
  token: string;
  now: string;
  iv: number[];
  src: string;
  secret: string;
}
interface VerifyVector {
  token: string;
  now: string;
  ttl_sec: number;
  src: string;
  secret: string;
}
interface InvalidVector {
  desc: string;
  token: string;
  now: string;
  ttl_sec: number;
  secret: string;
}

const generate = loadVectors<GenerateVector[]>('fernet/generate.json');
const verify = loadVectors<VerifyVector[]>('fernet/verify.json');
const invalid = loadVectors<InvalidVector[]>('fernet/invalid.json');

describe('Fernet spec vectors', () => {
  it('loads every vector file', () => {
    expect([generate.length, verify.length, invalid.length]).toEqual([1, 1, 8]);
  });

  test.each(generate.map((v, i) => ({ ...v, desc: `generate[${i}] "${v.src}" at ${v.now}` })))(
    'generate: $desc produces exactly the spec token',
    (v) => {
      const token = fernetEncrypt(v.secret, Buffer.from(v.src, 'utf8'), { now: new Date(v.now), iv: Uint8Array.from(v.iv) });
      expect(token).toBe(v.token);
    },
  );

  test.each(verify.map((v, i) => ({ ...v, desc: `verify[${i}] "${v.src}" at ${v.now} with ttl ${v.ttl_sec}` })))(
    'verify: $desc decrypts to src',
    (v) => {
      const plaintext = fernetDecrypt(v.secret, v.token, { ttlSeconds: v.ttl_sec, now: new Date(v.now) });
      expect(plaintext.toString('utf8')).toBe(v.src);
    },
  );

  test.each(invalid)('invalid: $desc is rejected with DecryptionError', (v) => {
    const attempt = () => fernetDecrypt(v.secret, v.token, { ttlSeconds: v.ttl_sec, now: new Date(v.now) });
    expect(attempt).toThrow(DecryptionError);
    expect(attempt).toThrow(new DecryptionError(MESSAGES.DECRYPTION_FAILED));
  });

  it('converts the RFC 3339 offset of "now" (the generate vector is stamped 499162800)', () => {
    const token = Buffer.from(generate[0].token, 'base64url');
    expect(token.readBigUInt64BE(1)).toBe(499162800n);
    expect(new Date(generate[0].now).getTime() / 1000).toBe(499162800);
  });

  it('the expired-TTL vector is valid a moment earlier, so the rejection is the TTL check itself', () => {
    const expired = invalid.find((v) => v.desc === 'expired TTL')!;
    // These two tokens carry an empty plaintext (Python's Fernet decrypts them to b'' as well).
    const inTime = { ttlSeconds: 60, now: new Date('1985-10-26T01:21:00-07:00') };
    expect(fernetDecrypt(expired.secret, expired.token, inTime)).toEqual(Buffer.alloc(0));
    // Without a TTL the timestamp isn't checked, as in Python.
    expect(fernetDecrypt(expired.secret, expired.token, { now: new Date(expired.now) })).toEqual(Buffer.alloc(0));
  });

  it('the far-future vector is authentic: only the clock-skew rule rejects it, and only when a TTL applies', () => {
    const future = invalid.find((v) => v.desc === 'far-future TS (unacceptable clock skew)')!;
    const stamped = Number(Buffer.from(future.token, 'base64url').readBigUInt64BE(1));
    expect(fernetDecrypt(future.secret, future.token, { now: new Date(future.now) })).toEqual(Buffer.alloc(0));
    // 60 s of skew is tolerated, 61 s is not.
    expect(fernetDecrypt(future.secret, future.token, { ttlSeconds: 60, now: new Date((stamped - 60) * 1000) })).toEqual(Buffer.alloc(0));
    expect(() => fernetDecrypt(future.secret, future.token, { ttlSeconds: 60, now: new Date((stamped - 61) * 1000) })).toThrow(
      DecryptionError,
    );
  });
});
