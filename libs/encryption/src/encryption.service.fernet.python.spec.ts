import { randomBytes } from 'node:crypto';

import { ManualClock } from '../../../test/fixtures/operations/manual-clock.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { PYTHON, PYTHON_CRYPTOGRAPHY_INSTALL, runPython } from '../../../test/support/python.js';
import { fernetTimestamp } from './crypto/fernet.js';
import { DecryptionError } from './errors/encryption.errors.js';
import type { EncryptionModuleOptions } from './interfaces/encryption-module-options.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

/**
 * Interoperability of `EncryptionService` in fernet mode with Python's `cryptography.fernet`, through
 * the keys `KeyManagerService.exportFernetKeys()` hands out. Python is required: when it or the
 * module is missing these tests fail rather than skip.
 */

type PyOp =
  | { op: 'encrypt'; keys: string[]; pt: string; now: number }
  | { op: 'decrypt'; keys: string[]; token: string; ttl?: number; now?: number }
  | { op: 'rotate'; keys: string[]; token: string }
  | { op: 'timestamp'; keys: string[]; token: string };

type PyResult = { ok: true; value: string | number } | { ok: false; error: string };

/** MultiFernet over the exported list, as the other side of an integration would hold it. */
const PEER = String.raw`
import base64, json, sys
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

def run(req):
    f = MultiFernet([Fernet(k) for k in req['keys']])
    op = req['op']
    if op == 'encrypt':
        return f.encrypt_at_time(base64.b64decode(req['pt']), req['now']).decode()
    if op == 'decrypt':
        if 'now' in req:
            return base64.b64encode(f.decrypt_at_time(req['token'], req['ttl'], req['now'])).decode()
        return base64.b64encode(f.decrypt(req['token'], req.get('ttl'))).decode()
    if op == 'rotate':
        return f.rotate(req['token']).decode()
    if op == 'timestamp':
        # MultiFernet has no extract_timestamp before cryptography 40: ask the first key.
        return Fernet(req['keys'][0]).extract_timestamp(req['token'])
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
const NOW = 1_900_000_000; // 2030-03-17, seconds
const SAMPLES = [0, 1, 15, 16, 17, 33, 1000].map((size) => randomBytes(size));

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

async function fernetService(options: EncryptionModuleOptions = {}) {
  const clock = new ManualClock(NOW * 1000);
  const app = await apps.create({
    algorithm: 'fernet',
    enableAsymmetric: false,
    clock,
    keyPropagation: { delayMs: 0 },
    ...options,
  });
  return { ...app, clock };
}

describe(`EncryptionService (algorithm: 'fernet') with Python's cryptography.fernet (${PYTHON})`, () => {
  it(`has python3-cryptography available (CI: ${PYTHON_CRYPTOGRAPHY_INSTALL})`, () => {
    expect(runPython<string>('import cryptography, json; print(json.dumps(cryptography.__version__))', null)).toMatch(
      /^\d+\./,
    );
  });

  it('tokens made by the service decrypt in Python with the exported keys, with and without a TTL', async () => {
    const { encryption, keys } = await fernetService();
    const exported = keys.exportFernetKeys();
    const tokens = await Promise.all(SAMPLES.map((sample) => encryption.encryptToString(sample)));
    const text = await encryption.encryptToString('unicode ✓ text');
    const values = pythonValues([
      ...tokens.flatMap((token): PyOp[] => [
        { op: 'decrypt', keys: exported, token },
        { op: 'decrypt', keys: exported, token, ttl: 60, now: NOW + 60 },
      ]),
      { op: 'decrypt', keys: exported, token: text },
      { op: 'timestamp', keys: exported, token: text },
    ]);
    SAMPLES.forEach((sample, i) => {
      expect(values[2 * i]).toBe(b64(sample));
      expect(values[2 * i + 1]).toBe(b64(sample));
    });
    expect(Buffer.from(values.at(-2) as string, 'base64').toString()).toBe('unicode ✓ text');
    expect(values.at(-1)).toBe(NOW);
    // Python agrees on expiry too.
    expect(python([{ op: 'decrypt', keys: exported, token: text, ttl: 60, now: NOW + 61 }])).toEqual([
      { ok: false, error: 'InvalidToken' },
    ]);
  });

  it('tokens made in Python with the exported key decrypt through the service, with its TTL', async () => {
    const { encryption, keys, clock } = await fernetService({ fernetTtlSeconds: 300 });
    const exported = keys.exportFernetKeys();
    const tokens = pythonValues(
      SAMPLES.map((sample) => ({ op: 'encrypt', keys: exported, pt: b64(sample), now: NOW })),
    ) as string[];
    for (const [i, token] of tokens.entries()) expect(await encryption.decrypt(token)).toEqual(SAMPLES[i]);
    const [json] = pythonValues([
      { op: 'encrypt', keys: exported, pt: b64(Buffer.from('{"from":"python"}')), now: NOW },
    ]) as string[];
    expect(await encryption.decrypt(json, { as: 'json' })).toEqual({ from: 'python' });

    clock.advance(301_000);
    await expect(encryption.decrypt(tokens[0])).rejects.toThrow(DecryptionError);
  });

  it('after a rotation here: both sides keep reading old tokens, new tokens need the re-exported keys', async () => {
    const { encryption, keys } = await fernetService();
    const before = keys.exportFernetKeys();
    const oursBefore = await encryption.encryptToString(Buffer.from('ours, before'));
    const [theirsBefore] = pythonValues([
      { op: 'encrypt', keys: before, pt: b64(Buffer.from('theirs, before')), now: NOW },
    ]) as string[];

    await keys.rotate();
    const after = keys.exportFernetKeys();
    expect(after.slice(1)).toEqual(before);
    const oursAfter = await encryption.encryptToString(Buffer.from('ours, after'));

    // Here: MultiFernet-style decryption with the retained key.
    expect((await encryption.decrypt<Buffer>(theirsBefore)).toString()).toBe('theirs, before');
    // Python with the old export can't read the new token; with the new export it reads everything.
    expect(python([{ op: 'decrypt', keys: before, token: oursAfter }])).toEqual([{ ok: false, error: 'InvalidToken' }]);
    expect(
      pythonValues([
        { op: 'decrypt', keys: after, token: oursBefore },
        { op: 'decrypt', keys: after, token: oursAfter },
      ]).map((value) => Buffer.from(value as string, 'base64').toString()),
    ).toEqual(['ours, before', 'ours, after']);

    // Python's MultiFernet.rotate moves its old token to our new active key, timestamp intact.
    const [rotatedThere] = pythonValues([{ op: 'rotate', keys: after, token: theirsBefore }]) as string[];
    expect(fernetTimestamp(after[0], rotatedThere)).toEqual(new Date(NOW * 1000));
    expect(() => fernetTimestamp(before[0], rotatedThere)).toThrow(DecryptionError);
    expect((await encryption.decrypt<Buffer>(rotatedThere)).toString()).toBe('theirs, before');

    // The service's rotateFernetToken does the same for Python: the rotated token opens with the new key alone.
    const rotatedHere = await encryption.rotateFernetToken(theirsBefore);
    expect(
      python([
        { op: 'decrypt', keys: [after[0]], token: rotatedHere },
        { op: 'timestamp', keys: [after[0]], token: rotatedHere },
        { op: 'decrypt', keys: [before[0]], token: rotatedHere },
      ]),
    ).toEqual([
      { ok: true, value: b64(Buffer.from('theirs, before')) },
      { ok: true, value: NOW },
      { ok: false, error: 'InvalidToken' },
    ]);
  });

  it('a second instance sharing the store reads Python tokens made with keys exported by the first', async () => {
    const keyStore = new InMemoryKeyStore();
    const masterKey = randomBytes(32);
    const first = await fernetService({ keyStore, masterKey });
    const second = await fernetService({ keyStore, masterKey });
    expect(second.keys.exportFernetKeys()).toEqual(first.keys.exportFernetKeys());
    const [token] = pythonValues([
      { op: 'encrypt', keys: first.keys.exportFernetKeys(), pt: b64(Buffer.from('shared')), now: NOW },
    ]) as string[];
    expect(await second.encryption.decrypt(token, { as: 'string' })).toBe('shared');
  });
});
