import { randomBytes } from 'node:crypto';

import fc from 'fast-check';

import { AEAD_CIPHERS, randomNonce } from './aead.js';

describe('randomNonce', () => {
  it('hands out nonces of the asked size that never share bytes, across pool refills', () => {
    const nonces = Array.from({ length: 2_000 }, () => randomNonce(12)); // 24 KB: several 4 KiB pools
    const copies = nonces.map((nonce) => Buffer.from(nonce));
    expect(new Set(copies.map((nonce) => nonce.toString('hex'))).size).toBe(nonces.length);
    for (const nonce of nonces) expect(nonce.length).toBe(12);
    // A nonce already handed out never changes when the pool is used up and replaced.
    for (let i = 0; i < 1_000; i++) randomNonce(16);
    nonces.forEach((nonce, i) => expect(nonce.equals(copies[i])).toBe(true));
  });

  it('does not return all-zero or repeating blocks (the pool is filled by the CSPRNG)', () => {
    const sample = Buffer.concat(Array.from({ length: 400 }, () => randomNonce(12)));
    const counts = new Map<number, number>();
    for (const byte of sample) counts.set(byte, (counts.get(byte) ?? 0) + 1);
    // 4,800 uniform bytes: every value appears, none more than ~3x its expected 18.75 times.
    expect(counts.size).toBe(256);
    expect(Math.max(...counts.values())).toBeLessThan(60);
  });
});

describe.each(AEAD_CIPHERS.map((cipher) => [cipher.name, cipher] as const))('%s sealInto', (_name, cipher) => {
  const key = randomBytes(cipher.keySize);

  it('writes exactly ciphertextLength + tagSize bytes: what seal() makes, and open() reads it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3 * 64 * 1024 + 17, size: 'large' }),
        fc.uint8Array({ maxLength: 40 }),
        fc.nat({ max: 64 }),
        (plaintextBytes, aadBytes, offset) => {
          const plaintext = Buffer.from(plaintextBytes);
          const aad = Buffer.from(aadBytes);
          const nonce = randomNonce(cipher.nonceSize);
          const body = cipher.ciphertextLength(plaintext.length) + cipher.tagSize;
          const out = Buffer.alloc(offset + body + 8, 0xee);
          expect(cipher.sealInto(key, nonce, plaintext, aad, out, offset)).toBe(body);
          // Nothing before or after the written range is touched.
          expect(out.subarray(0, offset).every((byte) => byte === 0xee)).toBe(true);
          expect(out.subarray(offset + body).every((byte) => byte === 0xee)).toBe(true);
          const { ciphertext, tag } = cipher.seal(key, nonce, plaintext, aad);
          expect(out.subarray(offset, offset + body)).toEqual(Buffer.concat([ciphertext, tag]));
          const opened = cipher.open(key, nonce, ciphertext, tag, aad);
          expect(opened.equals(plaintext)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('seals inputs larger than its 64 KiB slices in one piece', () => {
    const plaintext = randomBytes(3 * 64 * 1024 + 5);
    const nonce = randomNonce(cipher.nonceSize);
    const out = Buffer.alloc(cipher.ciphertextLength(plaintext.length) + cipher.tagSize);
    cipher.sealInto(key, nonce, plaintext, Buffer.alloc(0), out, 0);
    const ciphertext = out.subarray(0, out.length - cipher.tagSize);
    expect(cipher.open(key, nonce, ciphertext, out.subarray(ciphertext.length), Buffer.alloc(0)).equals(plaintext)).toBe(true);
  });
});
