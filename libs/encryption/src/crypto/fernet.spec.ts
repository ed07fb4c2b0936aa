import fc from 'fast-check';

import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import { fernetDecrypt, fernetEncrypt, fernetRotate, fernetTimestamp, generateFernetKey, isFernetKey } from './fernet.js';

const RUNS = { numRuns: 150 };
const NOW = new Date('2024-05-01T12:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const at = (seconds: number) => new Date(seconds * 1000);

const tokenBytes = (token: string) => Buffer.from(token, 'base64url');
const toToken = (bytes: Buffer) => {
  const text = bytes.toString('base64url');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
};

/** Asserts the one generic failure: right class, right message, nothing chained that could tell why. */
function expectRejected(attempt: () => unknown): void {
  let caught: unknown;
  try {
    attempt();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DecryptionError);
  expect((caught as DecryptionError).message).toBe(MESSAGES.DECRYPTION_FAILED);
  expect((caught as DecryptionError).code).toBe('DECRYPTION_FAILED');
  expect((caught as Error).cause).toBeUndefined();
}

const rawKeyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('Fernet keys', () => {
  it('generates 32-byte keys as padded url-safe base64, like Fernet.generate_key()', () => {
    const key = generateFernetKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(Buffer.from(key, 'base64url')).toHaveLength(32);
    expect(generateFernetKey()).not.toBe(key);
    expect(isFernetKey(key)).toBe(true);
  });

  it('accepts the same key as text or as its 32 raw bytes', () => {
    fc.assert(
      fc.property(rawKeyArb, fc.uint8Array({ maxLength: 64 }), (raw, plaintext) => {
        const text = toToken(Buffer.from(raw));
        const token = fernetEncrypt(text, plaintext);
        expect(fernetDecrypt(raw, token)).toEqual(Buffer.from(plaintext));
      }),
      { numRuns: 50 },
    );
  });

  const validKey = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
  test.each([
    ['standard base64 alphabet', validKey.replace('_', '/')],
    ['missing padding', validKey.slice(0, -1)],
    ['31 bytes', toToken(Buffer.alloc(31, 1))],
    ['33 bytes', toToken(Buffer.alloc(33, 1))],
    ['non-zero trailing bits (non-canonical)', validKey.slice(0, -2) + 'f='],
    ['surrounding whitespace', ` ${validKey}\n`],
    ['empty string', ''],
    ['a Buffer of the base64 text instead of the raw bytes', Buffer.from(validKey)],
    ['16 raw bytes', Buffer.alloc(16)],
  ])('rejects a key with %s as EncryptionInputError', (_, key) => {
    expect(isFernetKey(key)).toBe(false);
    expect(() => fernetEncrypt(key, Buffer.from('x'))).toThrow(new EncryptionInputError(MESSAGES.INVALID_FERNET_KEY));
    expect(() => fernetDecrypt(key, 'gAAAAA==')).toThrow(EncryptionInputError);
  });

  it('checks every key of a list, and refuses an empty list', () => {
    expect(() => fernetDecrypt([generateFernetKey(), 'nope'], 'x')).toThrow(EncryptionInputError);
    expect(() => fernetDecrypt([], 'x')).toThrow(new EncryptionInputError(MESSAGES.NO_FERNET_KEYS));
    expect(() => fernetRotate([], 'x')).toThrow(EncryptionInputError);
  });
});

describe('fernetEncrypt / fernetDecrypt', () => {
  const key = generateFernetKey();

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(rawKeyArb, fc.uint8Array({ maxLength: 2048 }), (raw, plaintext) => {
        const decrypted = fernetDecrypt(raw, fernetEncrypt(raw, plaintext));
        expect(decrypted).toEqual(Buffer.from(plaintext));
      }),
      RUNS,
    );
  });

  it('lays the token out as the spec says: 0x80, timestamp, IV, whole blocks, HMAC', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (plaintext) => {
        const token = fernetEncrypt(key, plaintext, { now: NOW });
        expect(token).toMatch(/^[A-Za-z0-9_-]*={0,2}$/);
        expect(token.length % 4).toBe(0);
        const bytes = tokenBytes(token);
        expect(bytes[0]).toBe(0x80);
        expect(bytes.readBigUInt64BE(1)).toBe(BigInt(NOW_SECONDS));
        expect(bytes.length).toBe(1 + 8 + 16 + 16 * (Math.floor(plaintext.length / 16) + 1) + 32);
      }),
      { numRuns: 50 },
    );
  });

  it('stamps tokens with the current time and a fresh random IV by default', () => {
    const before = Math.floor(Date.now() / 1000);
    const [a, b] = [fernetEncrypt(key, Buffer.from('same')), fernetEncrypt(key, Buffer.from('same'))];
    const after = Math.floor(Date.now() / 1000);
    const stamp = Number(tokenBytes(a).readBigUInt64BE(1));
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(after);
    expect(tokenBytes(a).subarray(9, 25)).not.toEqual(tokenBytes(b).subarray(9, 25));
    expect(fernetTimestamp(key, a).getTime()).toBe(stamp * 1000);
  });

  it('rejects any single bit flip anywhere in the token', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(), (plaintext, position) => {
        const bytes = tokenBytes(fernetEncrypt(key, plaintext));
        const bit = position % (bytes.length * 8);
        bytes[bit >> 3] ^= 1 << (bit & 7);
        expectRejected(() => fernetDecrypt(key, toToken(bytes)));
      }),
      RUNS,
    );
  });

  it('rejects any truncation of the token bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(), (plaintext, cut) => {
        const bytes = tokenBytes(fernetEncrypt(key, plaintext));
        expectRejected(() => fernetDecrypt(key, toToken(bytes.subarray(0, cut % bytes.length))));
      }),
      RUNS,
    );
  });

  it('rejects any extension of the token bytes, including whole extra blocks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ minLength: 1, maxLength: 48 }), (plaintext, extra) => {
        const bytes = tokenBytes(fernetEncrypt(key, plaintext));
        expectRejected(() => fernetDecrypt(key, toToken(Buffer.concat([bytes, extra]))));
        expectRejected(() => fernetDecrypt(key, toToken(Buffer.concat([extra, bytes]))));
      }),
      RUNS,
    );
  });

  it('rejects other encodings of a valid token: unpadded, standard alphabet, whitespace, non-canonical bits', () => {
    // Fixed inputs, so the token surely contains '-' or '_' and differs in the standard alphabet.
    const fixedKey = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
    const plaintext = Buffer.from('hello fernet');
    const token = fernetEncrypt(fixedKey, plaintext, { iv: Buffer.alloc(16, 1), now: NOW });
    expect(fernetDecrypt(fixedKey, token)).toEqual(plaintext);
    expect(token).toMatch(/[-_]/);
    expect(token.endsWith('==')).toBe(true); // 1+8+16+16+32 = 73 bytes: two padding characters
    const variants = [
      token.replace(/=+$/, ''),
      Buffer.from(token, 'base64url').toString('base64'),
      `${token}\n`,
      ` ${token}`,
      token.slice(0, -3) + String.fromCharCode(token.charCodeAt(token.length - 3) + 1) + token.slice(-2),
    ];
    for (const variant of variants) {
      expect(variant).not.toBe(token);
      expectRejected(() => fernetDecrypt(fixedKey, variant));
    }
  });

  it('throws nothing but DecryptionError for arbitrary strings', () => {
    const alphabet = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='.split(''));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.string({ unit: alphabet, maxLength: 200 }),
          fc.string({ unit: alphabet, minLength: 90, maxLength: 200 }).map((s) => `gAAAAA${s}`),
        ),
        (text) => expectRejected(() => fernetDecrypt(key, text, { ttlSeconds: 60 })),
      ),
      { numRuns: 300 },
    );
  });

  it('rejects non-string tokens with DecryptionError, as untyped callers may pass anything', () => {
    for (const value of [undefined, null, 42, {}, Buffer.from('gAAAAA==')]) {
      expectRejected(() => fernetDecrypt(key, value as unknown as string));
    }
  });

  it('rejects a token made with another key', () => {
    expectRejected(() => fernetDecrypt(generateFernetKey(), fernetEncrypt(key, Buffer.from('secret'))));
  });

  describe('TTL and clock skew', () => {
    const token = fernetEncrypt(key, Buffer.from('timed'), { now: NOW });
    const decryptAt = (seconds: number, ttlSeconds?: number) =>
      fernetDecrypt(key, token, { ttlSeconds, now: at(seconds) }).toString();

    it('accepts a token exactly ttl seconds old and rejects it one second later', () => {
      expect(decryptAt(NOW_SECONDS + 100, 100)).toBe('timed');
      expectRejected(() => decryptAt(NOW_SECONDS + 101, 100));
      expect(decryptAt(NOW_SECONDS, 0)).toBe('timed');
      expectRejected(() => decryptAt(NOW_SECONDS + 1, 0));
    });

    it('tolerates 60 s of clock skew when a TTL applies, and nothing more', () => {
      expect(decryptAt(NOW_SECONDS - 60, 10)).toBe('timed');
      expectRejected(() => decryptAt(NOW_SECONDS - 61, 10));
    });

    it('ignores the timestamp entirely without a TTL, as Python does', () => {
      expect(decryptAt(NOW_SECONDS + 10 ** 9)).toBe('timed');
      expect(decryptAt(NOW_SECONDS - 10 ** 6)).toBe('timed');
    });

    it('counts sub-second clocks down to whole seconds, like int(time.time())', () => {
      expect(fernetDecrypt(key, token, { ttlSeconds: 0, now: new Date(NOW.getTime() + 999) }).toString()).toBe('timed');
    });
  });

  describe('input validation', () => {
    test.each([-1, 1.5, Number.NaN, Infinity])('rejects ttlSeconds %p as EncryptionInputError', (ttlSeconds) => {
      expect(() => fernetDecrypt(key, 'x', { ttlSeconds })).toThrow(new EncryptionInputError(MESSAGES.INVALID_FERNET_TTL));
    });

    it('rejects a wrong-sized IV, an invalid or pre-1970 date, and non-byte plaintexts', () => {
      expect(() => fernetEncrypt(key, Buffer.alloc(1), { iv: Buffer.alloc(12) })).toThrow(
        new EncryptionInputError(MESSAGES.INVALID_FERNET_IV),
      );
      expect(() => fernetEncrypt(key, Buffer.alloc(1), { now: new Date(Number.NaN) })).toThrow(
        new EncryptionInputError(MESSAGES.INVALID_FERNET_TIME),
      );
      expect(() => fernetEncrypt(key, Buffer.alloc(1), { now: new Date(-1000) })).toThrow(EncryptionInputError);
      expect(() => fernetDecrypt(key, 'x', { now: new Date('nonsense') })).toThrow(EncryptionInputError);
      expect(() => fernetEncrypt(key, 'text' as unknown as Buffer)).toThrow(new EncryptionInputError(MESSAGES.NOT_BYTES));
    });

    it('is deterministic given the IV and time, and the IV lands in the token', () => {
      const iv = Buffer.alloc(16, 7);
      const a = fernetEncrypt(key, Buffer.from('x'), { iv, now: NOW });
      expect(fernetEncrypt(key, Buffer.from('x'), { iv, now: NOW })).toBe(a);
      expect(tokenBytes(a).subarray(9, 25)).toEqual(iv);
    });
  });
});

describe('MultiFernet semantics: several keys and rotation', () => {
  const oldKey = generateFernetKey();
  const newKey = generateFernetKey();
  const plaintext = Buffer.from('rotate me');

  it('decrypts with any retained key, whatever its position in the list', () => {
    const fromOld = fernetEncrypt(oldKey, plaintext);
    const fromNew = fernetEncrypt(newKey, plaintext);
    for (const keys of [[newKey, oldKey], [oldKey, newKey]]) {
      expect(fernetDecrypt(keys, fromOld)).toEqual(plaintext);
      expect(fernetDecrypt(keys, fromNew)).toEqual(plaintext);
    }
    expectRejected(() => fernetDecrypt([newKey], fromOld));
    expectRejected(() => fernetDecrypt([generateFernetKey(), generateFernetKey()], fromOld));
  });

  it('rotates to the first key, keeping the original timestamp', () => {
    const original = fernetEncrypt(oldKey, plaintext, { now: NOW });
    const rotated = fernetRotate([newKey, oldKey], original);
    expect(rotated).not.toBe(original);
    expect(fernetDecrypt(newKey, rotated)).toEqual(plaintext);
    expectRejected(() => fernetDecrypt(oldKey, rotated));
    expect(tokenBytes(rotated).readBigUInt64BE(1)).toBe(BigInt(NOW_SECONDS));
    expect(fernetTimestamp(newKey, rotated)).toEqual(NOW);
    // The TTL still counts from the first encryption.
    expectRejected(() => fernetDecrypt(newKey, rotated, { ttlSeconds: 60, now: at(NOW_SECONDS + 61) }));
  });

  it('rotates any bytes, and re-rotating a token already under the first key keeps it decryptable', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const rotated = fernetRotate([newKey, oldKey], fernetEncrypt(oldKey, bytes));
        expect(fernetDecrypt(newKey, fernetRotate([newKey, oldKey], rotated))).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 50 },
    );
  });

  it('refuses to rotate a token none of the keys made, or a tampered one', () => {
    expectRejected(() => fernetRotate([newKey], fernetEncrypt(oldKey, plaintext)));
    const bytes = tokenBytes(fernetEncrypt(oldKey, plaintext));
    bytes[30] ^= 1;
    expectRejected(() => fernetRotate([newKey, oldKey], toToken(bytes)));
    expectRejected(() => fernetTimestamp(oldKey, toToken(bytes)));
  });
});
