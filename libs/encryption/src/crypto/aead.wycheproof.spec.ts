import { createCipheriv, createHmac, randomBytes } from 'node:crypto';

import { hex, loadVectors } from '../../../../test/support/vectors.js';
import type { AeadCipher } from './aead.js';
import { AES_256_CBC_HMAC_SHA256, AES_256_GCM, CHACHA20_POLY1305 } from './aead.js';

interface AeadTest {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

interface AeadGroup {
  keySize: number;
  ivSize: number;
  tagSize: number;
  tests: AeadTest[];
}

interface AeadVectorFile {
  numberOfTests: number;
  testGroups: AeadGroup[];
}

interface Case extends AeadTest {
  keySize: number;
  ivSize: number;
  tagSize: number;
  label: string;
}

function casesOf(file: string): { all: Case[]; supported: Case[]; unsupported: Case[]; numberOfTests: number } {
  const vectors = loadVectors<AeadVectorFile>(file);
  const all = vectors.testGroups.flatMap((group) =>
    group.tests.map((test) => ({
      ...test,
      keySize: group.keySize,
      ivSize: group.ivSize,
      tagSize: group.tagSize,
      label: `tcId ${test.tcId} (${test.result}${test.flags.length ? `, ${test.flags.join(' ')}` : ''}${test.comment ? `: ${test.comment}` : ''})`,
    })),
  );
  const isSupported = (c: Case) => c.keySize === 256 && c.ivSize === 96 && c.tagSize === 128;
  return {
    all,
    supported: all.filter(isSupported),
    unsupported: all.filter((c) => !isSupported(c)),
    numberOfTests: vectors.numberOfTests,
  };
}

/** Runs `open` and returns what it threw, or undefined when it succeeded. */
function openError(cipher: AeadCipher, c: Case): unknown {
  try {
    cipher.open(hex(c.key), hex(c.iv), hex(c.ct), hex(c.tag), hex(c.aad));
    return undefined;
  } catch (error) {
    return error;
  }
}

describe.each([
  ['AES-256-GCM', AES_256_GCM, 'wycheproof/aes_gcm_test.json', { valid: 39, invalid: 27 }],
  ['ChaCha20-Poly1305', CHACHA20_POLY1305, 'wycheproof/chacha20_poly1305_test.json', { valid: 256, invalid: 60 }],
] as const)('%s against Wycheproof', (_name, cipher, file, expectedCounts) => {
  const { all, supported, unsupported, numberOfTests } = casesOf(file);
  const valid = supported.filter((c) => c.result === 'valid');
  const invalid = supported.filter((c) => c.result === 'invalid');

  test('every vector of the file is run, either as a supported case or as a named rejection', () => {
    expect(all).toHaveLength(numberOfTests);
    expect(supported.length + unsupported.length).toBe(numberOfTests);
    expect({ valid: valid.length, invalid: invalid.length }).toEqual(expectedCounts);
    // No "acceptable" results exist in these files; if one appears it needs a decision, not a silent pass.
    expect(all.filter((c) => c.result === 'acceptable')).toEqual([]);
  });

  describe('256-bit key, 96-bit nonce, 128-bit tag (what the primitive supports)', () => {
    test.each(valid.map((c) => [c.label, c] as const))('%s: decrypts to msg and encrypts to ct+tag', (_label, c) => {
      const plaintext = cipher.open(hex(c.key), hex(c.iv), hex(c.ct), hex(c.tag), hex(c.aad));
      expect(plaintext.toString('hex')).toBe(c.msg);
      const sealed = cipher.seal(hex(c.key), hex(c.iv), hex(c.msg), hex(c.aad));
      expect(sealed.ciphertext.toString('hex')).toBe(c.ct);
      expect(sealed.tag.toString('hex')).toBe(c.tag);
    });

    test.each(invalid.map((c) => [c.label, c] as const))('%s: is rejected by open', (_label, c) => {
      expect(() => cipher.open(hex(c.key), hex(c.iv), hex(c.ct), hex(c.tag), hex(c.aad))).toThrow();
    });
  });

  if (unsupported.length) {
    describe('other key / nonce / tag sizes: not supported, so open must reject them (size check, not a pass of the algorithm)', () => {
      test.each(
        unsupported.map(
          (c) => [`${c.label} with a ${c.keySize}-bit key, ${c.ivSize}-bit nonce, ${c.tagSize}-bit tag`, c] as const,
        ),
      )('%s: rejected by the size check', (_label, c) => {
        const error = openError(cipher, c);
        // The library's own size check throws before node:crypto is reached.
        expect((error as Error | undefined)?.constructor.name).toBe('AuthenticationFailure');
        expect(() => cipher.seal(hex(c.key), hex(c.iv), hex(c.msg), hex(c.aad))).toThrow();
      });
    });
  }
});

describe('AES-256-CBC-HMAC-SHA256 (no Wycheproof vectors: checked against node:crypto directly)', () => {
  const cipher = AES_256_CBC_HMAC_SHA256;

  test('has the documented sizes and id', () => {
    expect({ id: cipher.id, keySize: cipher.keySize, nonceSize: cipher.nonceSize, tagSize: cipher.tagSize }).toEqual({
      id: 3,
      keySize: 64,
      nonceSize: 16,
      tagSize: 32,
    });
  });

  test.each([0, 1, 15, 16, 17, 100])('seal is AES-256-CBC/PKCS#7 then HMAC-SHA256(aad || iv || c || bitlen(aad)) for %i bytes', (size) => {
    const key = randomBytes(64);
    const iv = randomBytes(16);
    const plaintext = randomBytes(size);
    const aad = randomBytes(size % 7);
    const { ciphertext, tag } = cipher.seal(key, iv, plaintext, aad);

    const c = createCipheriv('aes-256-cbc', key.subarray(0, 32), iv);
    const expectedCiphertext = Buffer.concat([c.update(plaintext), c.final()]);
    const aadBits = Buffer.alloc(8);
    aadBits.writeBigUInt64BE(BigInt(aad.length * 8));
    const expectedTag = createHmac('sha256', key.subarray(32)).update(aad).update(iv).update(expectedCiphertext).update(aadBits).digest();

    expect(ciphertext).toEqual(expectedCiphertext);
    expect(ciphertext.length).toBe((Math.floor(size / 16) + 1) * 16);
    expect(tag).toEqual(expectedTag);
    expect(cipher.open(key, iv, ciphertext, tag, aad)).toEqual(plaintext);
  });

  test('any modified byte of ciphertext, tag, IV or AAD is rejected', () => {
    const key = randomBytes(64);
    const iv = randomBytes(16);
    const aad = Buffer.from('header');
    const { ciphertext, tag } = cipher.seal(key, iv, Buffer.from('attack at dawn, bring snacks'), aad);
    const flip = (b: Buffer, i: number) => {
      const copy = Buffer.from(b);
      copy[i] ^= 0x01;
      return copy;
    };
    for (let i = 0; i < ciphertext.length; i++) expect(() => cipher.open(key, iv, flip(ciphertext, i), tag, aad)).toThrow();
    for (let i = 0; i < tag.length; i++) expect(() => cipher.open(key, iv, ciphertext, flip(tag, i), aad)).toThrow();
    for (let i = 0; i < iv.length; i++) expect(() => cipher.open(key, flip(iv, i), ciphertext, tag, aad)).toThrow();
    for (let i = 0; i < aad.length; i++) expect(() => cipher.open(key, iv, ciphertext, tag, flip(aad, i))).toThrow();
    expect(() => cipher.open(flip(key, 40), iv, ciphertext, tag, aad)).toThrow();
    expect(() => cipher.open(key, iv, ciphertext, tag.subarray(0, 16), aad)).toThrow();
  });

  test('the AAD length is bound: shifting the IV into the AAD is rejected', () => {
    // Without the AAD-length block, (aad || iv, c[0..16], c[16..]) would MAC exactly like (aad, iv, c).
    const key = randomBytes(64);
    const iv = randomBytes(16);
    const aad = Buffer.from('ab');
    const { ciphertext, tag } = cipher.seal(key, iv, randomBytes(20), aad);
    expect(ciphertext).toHaveLength(32);
    const shiftedAad = Buffer.concat([aad, iv]);
    expect(() => cipher.open(key, ciphertext.subarray(0, 16), ciphertext.subarray(16), tag, shiftedAad)).toThrow();
  });

  test.each([
    ['a 32-byte key', randomBytes(32), randomBytes(16)],
    ['a 12-byte IV', randomBytes(64), randomBytes(12)],
  ])('rejects %s', (_name, key, iv) => {
    expect(() => cipher.seal(key, iv, Buffer.from('x'), Buffer.alloc(0))).toThrow();
    expect(() => cipher.open(key, iv, randomBytes(16), randomBytes(32), Buffer.alloc(0))).toThrow();
  });
});

describe.each([
  ['AES-256-GCM', AES_256_GCM],
  ['ChaCha20-Poly1305', CHACHA20_POLY1305],
])('%s size checks', (_name, cipher) => {
  test.each([
    ['a 16-byte key', randomBytes(16), randomBytes(12), randomBytes(16)],
    ['a 33-byte key', randomBytes(33), randomBytes(12), randomBytes(16)],
    ['a 16-byte nonce', randomBytes(32), randomBytes(16), randomBytes(16)],
    ['a 12-byte tag (truncated)', randomBytes(32), randomBytes(12), randomBytes(12)],
    ['a 4-byte tag (truncated)', randomBytes(32), randomBytes(12), randomBytes(4)],
  ])('open rejects %s', (_name, key, nonce, tag) => {
    expect(() => cipher.open(key, nonce, randomBytes(10), tag, Buffer.alloc(0))).toThrow();
  });

  test('a truncated real tag does not verify (no short-tag acceptance)', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const { ciphertext, tag } = cipher.seal(key, nonce, Buffer.from('message'), Buffer.alloc(0));
    for (const length of [4, 8, 12, 15]) {
      expect(() => cipher.open(key, nonce, ciphertext, tag.subarray(0, length), Buffer.alloc(0))).toThrow();
    }
    expect(cipher.open(key, nonce, ciphertext, tag, Buffer.alloc(0)).toString()).toBe('message');
  });
});
