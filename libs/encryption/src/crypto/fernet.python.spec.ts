import fc from 'fast-check';

import { PYTHON, PYTHON_CRYPTOGRAPHY_INSTALL, runPython } from '../../../../test/support/python.js';
import { DecryptionError } from '../errors/encryption.errors.js';
import { fernetDecrypt, fernetEncrypt, fernetRotate, fernetTimestamp, generateFernetKey } from './fernet.js';

/**
 * Interoperability with the reference implementation, pyca/cryptography's `cryptography.fernet`.
 * Python is required: when it or the module is missing these tests fail rather than skip.
 */

/** One request to the Python peer; byte strings travel as standard base64. */
type PyOp =
  | { op: 'version' }
  | { op: 'generate_key' }
  | { op: 'encrypt'; key: string; pt: string; now?: number }
  | { op: 'decrypt'; keys: string[]; token: string; ttl?: number; now?: number }
  | { op: 'rotate'; keys: string[]; token: string }
  | { op: 'timestamp'; key: string; token: string };

type PyResult = { ok: true; value: string | number } | { ok: false; error: string };

const PEER = String.raw`
import base64, json, sys
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
import cryptography

def multi(keys):
    return MultiFernet([Fernet(k) for k in keys])

def run(req):
    op = req['op']
    if op == 'version':
        return cryptography.__version__
    if op == 'generate_key':
        return Fernet.generate_key().decode()
    if op == 'encrypt':
        f, pt = Fernet(req['key']), base64.b64decode(req['pt'])
        token = f.encrypt_at_time(pt, req['now']) if 'now' in req else f.encrypt(pt)
        return token.decode()
    if op == 'decrypt':
        f = multi(req['keys'])
        if 'now' in req:
            pt = f.decrypt_at_time(req['token'], req['ttl'], req['now'])
        else:
            pt = f.decrypt(req['token'], req.get('ttl'))
        return base64.b64encode(pt).decode()
    if op == 'rotate':
        return multi(req['keys']).rotate(req['token']).decode()
    if op == 'timestamp':
        return Fernet(req['key']).extract_timestamp(req['token'])
    raise ValueError('unknown op ' + op)

out = []
for req in json.load(sys.stdin):
    try:
        out.append({'ok': True, 'value': run(req)})
    except InvalidToken:
        out.append({'ok': False, 'error': 'InvalidToken'})
json.dump(out, sys.stdout)
`;

function python(ops: PyOp[]): PyResult[] {
  const results = runPython<PyResult[]>(PEER, ops);
  expect(results).toHaveLength(ops.length);
  return results;
}

function pythonValues(ops: PyOp[]): Array<string | number> {
  return python(ops).map((result, i) => {
    if (!result.ok) throw new Error(`Python rejected request ${i} (${ops[i].op}): ${result.error}`);
    return result.value;
  });
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const NOW = 1_714_564_800; // 2024-05-01T12:00:00Z
const at = (seconds: number) => new Date(seconds * 1000);

/** Edge sizes around the AES block, plus random ones. */
function samplePlaintexts(count: number): Uint8Array[] {
  const edges = [0, 1, 15, 16, 17, 31, 32, 33, 4096].map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff));
  return [...edges, ...fc.sample(fc.uint8Array({ maxLength: 600 }), { numRuns: count, seed: 1234 })];
}

describe(`Fernet interoperability with Python's cryptography.fernet (${PYTHON})`, () => {
  it('has python3-cryptography available (CI: ' + PYTHON_CRYPTOGRAPHY_INSTALL + ')', () => {
    const [version] = pythonValues([{ op: 'version' }]);
    expect(version).toMatch(/^\d+\.\d+/);
  });

  it('tokens made here decrypt in Python, with and without a TTL', () => {
    const key = generateFernetKey();
    const plaintexts = samplePlaintexts(40);
    const tokens = plaintexts.map((pt) => fernetEncrypt(key, pt, { now: at(NOW) }));
    const ops: PyOp[] = tokens.flatMap((token) => [
      { op: 'decrypt', keys: [key], token },
      { op: 'decrypt', keys: [key], token, ttl: 30, now: NOW + 30 },
    ]);
    const values = pythonValues(ops);
    plaintexts.forEach((pt, i) => {
      expect(values[2 * i]).toBe(b64(pt));
      expect(values[2 * i + 1]).toBe(b64(pt));
    });
    const stamps = pythonValues(tokens.slice(0, 3).map((token) => ({ op: 'timestamp', key, token })));
    expect(stamps).toEqual([NOW, NOW, NOW]);
  });

  it('tokens made in Python (with its own keys) decrypt here', () => {
    const [key] = pythonValues([{ op: 'generate_key' }]) as string[];
    const plaintexts = samplePlaintexts(40);
    const tokens = pythonValues(plaintexts.map((pt) => ({ op: 'encrypt', key, pt: b64(pt), now: NOW }))) as string[];
    tokens.forEach((token, i) => {
      expect(fernetDecrypt(key, token)).toEqual(Buffer.from(plaintexts[i]));
      expect(fernetDecrypt(key, token, { ttlSeconds: 30, now: at(NOW + 30) })).toEqual(Buffer.from(plaintexts[i]));
      expect(fernetTimestamp(key, token)).toEqual(at(NOW));
    });
    // Python's own clock (no fixed time) also yields tokens we accept within a TTL.
    const [live] = pythonValues([{ op: 'encrypt', key, pt: b64(Buffer.from('live')) }]) as string[];
    expect(fernetDecrypt(key, live, { ttlSeconds: 120 }).toString()).toBe('live');
  });

  it('a token rotated by Python MultiFernet.rotate decrypts here with the new key alone, timestamp intact', () => {
    const [oldKey, newKey] = pythonValues([{ op: 'generate_key' }, { op: 'generate_key' }]) as string[];
    const plaintext = Buffer.from('rotated in python');
    const [original] = pythonValues([{ op: 'encrypt', key: oldKey, pt: b64(plaintext), now: NOW }]) as string[];
    const [rotated] = pythonValues([{ op: 'rotate', keys: [newKey, oldKey], token: original }]) as string[];
    expect(fernetDecrypt(newKey, rotated)).toEqual(plaintext);
    expect(() => fernetDecrypt(oldKey, rotated)).toThrow(DecryptionError);
    expect(fernetTimestamp(newKey, rotated)).toEqual(at(NOW));
  });

  it('a token rotated here by fernetRotate decrypts in Python with Fernet(new key), timestamp intact', () => {
    const oldKey = generateFernetKey();
    const newKey = generateFernetKey();
    const plaintext = Buffer.from('rotated in node');
    const rotated = fernetRotate([newKey, oldKey], fernetEncrypt(oldKey, plaintext, { now: at(NOW) }));
    const results = python([
      { op: 'decrypt', keys: [newKey], token: rotated },
      { op: 'timestamp', key: newKey, token: rotated },
      { op: 'decrypt', keys: [oldKey], token: rotated },
    ]);
    expect(results).toEqual([
      { ok: true, value: b64(plaintext) },
      { ok: true, value: NOW },
      { ok: false, error: 'InvalidToken' },
    ]);
  });

  it('Python MultiFernet decrypts tokens made here under a retained old key, and the reverse', () => {
    const oldKey = generateFernetKey();
    const newKey = generateFernetKey();
    const ours = fernetEncrypt(oldKey, Buffer.from('old'));
    const [theirs] = pythonValues([{ op: 'encrypt', key: oldKey, pt: b64(Buffer.from('old')) }]) as string[];
    expect(pythonValues([{ op: 'decrypt', keys: [newKey, oldKey], token: ours }])).toEqual([b64(Buffer.from('old'))]);
    expect(fernetDecrypt([newKey, oldKey], theirs).toString()).toBe('old');
  });

  it('agrees with Python on every TTL and clock-skew decision', () => {
    const key = generateFernetKey();
    const token = fernetEncrypt(key, Buffer.from('t'), { now: at(NOW) });
    const cases = [0, 1, 59, 60].flatMap((ttl) => [-120, -61, -60, -1, 0, 1, ttl - 1, ttl, ttl + 1, 10_000].map((age) => ({ ttl, age })));
    const results = python(cases.map(({ ttl, age }) => ({ op: 'decrypt', keys: [key], token, ttl, now: NOW + age })));
    cases.forEach(({ ttl, age }, i) => {
      let accepted: boolean;
      try {
        fernetDecrypt(key, token, { ttlSeconds: ttl, now: at(NOW + age) });
        accepted = true;
      } catch (error) {
        expect(error).toBeInstanceOf(DecryptionError);
        accepted = false;
      }
      expect({ ttl, age, accepted }).toEqual({ ttl, age, accepted: results[i].ok });
    });
    expect(results.some((r) => r.ok)).toBe(true);
    expect(results.some((r) => !r.ok)).toBe(true);
  });

  it('rejects the same tampered tokens Python rejects, and never accepts what Python refuses', () => {
    const key = generateFernetKey();
    const token = fernetEncrypt(key, Buffer.from('tamper target, two blocks long!!'));
    const bytes = Buffer.from(token, 'base64url');
    const toToken = (b: Buffer) => {
      const t = b.toString('base64url');
      return t + '='.repeat((4 - (t.length % 4)) % 4);
    };
    const mutated = fc
      .sample(
        fc.oneof(
          fc.nat(bytes.length * 8 - 1).map((bit) => {
            const copy = Buffer.from(bytes);
            copy[bit >> 3] ^= 1 << (bit & 7);
            return toToken(copy);
          }),
          fc.nat(bytes.length - 1).map((n) => toToken(bytes.subarray(0, n))),
          fc.uint8Array({ minLength: 1, maxLength: 32 }).map((extra) => toToken(Buffer.concat([bytes, extra]))),
          // Text-level edits: Python's decoder drops characters outside the alphabet, ours refuses them.
          fc.tuple(fc.nat(token.length - 1), fc.constantFrom('%', '+', '/', ' ', '\n', 'A', '=')).map(
            ([i, c]) => token.slice(0, i) + c + token.slice(i + 1),
          ),
        ),
        { numRuns: 150, seed: 99 },
      )
      .filter((candidate) => candidate !== token);
    const results = python(mutated.map((candidate) => ({ op: 'decrypt', keys: [key], token: candidate })));
    let bothRejected = 0;
    mutated.forEach((candidate, i) => {
      let ours: Buffer | undefined;
      try {
        ours = fernetDecrypt(key, candidate);
      } catch (error) {
        expect(error).toBeInstanceOf(DecryptionError);
      }
      // Whatever we accept, Python accepts with the same plaintext.
      if (ours) expect(results[i]).toEqual({ ok: true, value: ours.toString('base64') });
      if (!ours && !results[i].ok) bothRejected++;
    });
    expect(bothRejected).toBeGreaterThan(mutated.length / 2);
  });
});
