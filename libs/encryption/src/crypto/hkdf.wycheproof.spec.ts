import { hex, loadVectors } from '../../../../test/support/vectors.js';
import { hkdfSha256 } from './hkdf.js';

interface HkdfTest {
  tcId: number;
  comment: string;
  flags: string[];
  ikm: string;
  salt: string;
  info: string;
  /** Output length in bytes. */
  size: number;
  okm: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

const vectors = loadVectors<{ numberOfTests: number; testGroups: { tests: HkdfTest[] }[] }>('wycheproof/hkdf_sha256_test.json');
const tests = vectors.testGroups.flatMap((group) => group.tests);
const label = (t: HkdfTest) => `tcId ${t.tcId}${t.flags.length ? ` (${t.flags.join(' ')})` : ''}${t.comment ? `: ${t.comment}` : ''}`;

describe('hkdfSha256 against Wycheproof HKDF-SHA-256', () => {
  test('every vector of the file is run', () => {
    expect(tests).toHaveLength(vectors.numberOfTests);
    expect(tests.filter((t) => t.result === 'valid')).toHaveLength(83);
    expect(tests.filter((t) => t.result === 'invalid')).toHaveLength(3);
    expect(tests.filter((t) => t.result === 'acceptable')).toEqual([]);
  });

  test.each(tests.filter((t) => t.result === 'valid').map((t) => [label(t), t] as const))('%s: derives okm', (_label, t) => {
    const okm = hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size);
    expect(Buffer.isBuffer(okm)).toBe(true);
    expect(okm.toString('hex')).toBe(t.okm);
  });

  test.each(tests.filter((t) => t.result === 'invalid').map((t) => [label(t), t] as const))('%s: is refused', (_label, t) => {
    expect(() => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size)).toThrow();
  });

  test('a string info is used as its UTF-8 bytes', () => {
    const ikm = Buffer.alloc(32, 7);
    const salt = Buffer.from('salt');
    expect(hkdfSha256(ikm, salt, 'cipher:AES-256-GCM ✓', 32)).toEqual(hkdfSha256(ikm, salt, Buffer.from('cipher:AES-256-GCM ✓', 'utf8'), 32));
  });

  test('the largest allowed output is 255 × 32 bytes', () => {
    expect(hkdfSha256(Buffer.alloc(32), Buffer.alloc(0), '', 255 * 32)).toHaveLength(8160);
    expect(() => hkdfSha256(Buffer.alloc(32), Buffer.alloc(0), '', 255 * 32 + 1)).toThrow();
  });
});
