import { randomBytes } from 'node:crypto';

import request from 'supertest';

import { ENCRYPTION_METRICS } from '../../../../libs/encryption/src/metrics/encryption-metrics.constants.js';
import type { NodeBuild } from '../../../../test/fixtures/operations/node-build.js';
import { buildForNode } from '../../../../test/fixtures/operations/node-build.js';
import type { BootArgs } from '../../../../test/fixtures/operations/operations-app.child.js';
import type { OperationsChild } from '../../../../test/fixtures/operations/operations-child.js';
import { startOperationsChild } from '../../../../test/fixtures/operations/operations-child.js';
import { parseSamples, sampleValue } from '../../../../test/fixtures/operations/prometheus-text.js';

const M = ENCRYPTION_METRICS;

/**
 * `@willsoto/nestjs-prometheus` can't load under Jest on this Node (see node-build.ts), so each app
 * runs in a plain Node child process, booted fresh with an emptied prom-client registry
 * (`register.clear()`) for every test, and is scraped over HTTP.
 */
describe('EncryptionMetricsModule', () => {
  let build: NodeBuild;
  let child: OperationsChild;
  let url: string;

  beforeAll(async () => {
    build = buildForNode();
    child = await startOperationsChild(build);
  });
  afterAll(async () => {
    await child?.stop();
    build?.remove();
  });
  afterEach(() => child.call('close'));

  async function boot(args: Partial<BootArgs> = {}) {
    ({ url } = await child.call<{ url: string }>('boot', {
      integrations: ['metrics'],
      ...args,
      encryption: { enableCompression: false, ...args.encryption },
    }));
  }
  const scrape = async () => (await request(url).get('/metrics').expect(200).expect('Content-Type', /text\/plain/)).text;
  const encrypt = async (value: unknown, options?: unknown) => Buffer.from(await child.call<Uint8Array>('encrypt', { value, options }));
  const decrypt = (input: unknown, options?: unknown) =>
    child.call<{ ok: boolean; value?: unknown; code?: string }>('decrypt', { input, options });

  it('counts operations by operation, algorithm and result, with their bytes and durations', async () => {
    await boot();
    const a = await encrypt('hello');
    const b = await encrypt({ n: 1 });
    expect(await decrypt(a)).toEqual({ ok: true, value: 'hello' });
    expect(await decrypt('not an envelope')).toMatchObject({ ok: false, code: 'DECRYPTION_FAILED' });
    expect(await decrypt(a, { context: 'other' })).toMatchObject({ ok: false, code: 'DECRYPTION_FAILED' });

    const text = await scrape();
    const ops = (operation: string, algorithm: string, result: string) =>
      sampleValue(text, M.OPERATIONS, { operation, algorithm, result });
    expect(ops('encrypt', 'AES-256-GCM', 'success')).toBe(2);
    expect(ops('decrypt', 'AES-256-GCM', 'success')).toBe(1);
    expect(ops('decrypt', 'AES-256-GCM', 'failure')).toBe(1);
    expect(ops('decrypt', 'unknown', 'failure')).toBe(1);
    expect(parseSamples(text).filter((s) => s.name === M.OPERATIONS)).toHaveLength(4);

    expect(sampleValue(text, M.PLAINTEXT_BYTES, { operation: 'encrypt' })).toBe('hello'.length + '{"n":1}'.length);
    expect(sampleValue(text, M.CIPHERTEXT_BYTES, { operation: 'encrypt' })).toBe(a.length + b.length);
    expect(sampleValue(text, M.PLAINTEXT_BYTES, { operation: 'decrypt' })).toBe('hello'.length);
    expect(sampleValue(text, M.CIPHERTEXT_BYTES, { operation: 'decrypt' })).toBe(a.length);

    const count = (operation: string, result: string) => sampleValue(text, `${M.OPERATION_DURATION}_count`, { operation, result });
    expect(count('encrypt', 'success')).toBe(2);
    expect(count('decrypt', 'success')).toBe(1);
    expect(count('decrypt', 'failure')).toBe(2);
    const sum = sampleValue(text, `${M.OPERATION_DURATION}_sum`, { operation: 'encrypt', result: 'success' })!;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(5);
    expect(sampleValue(text, `${M.OPERATION_DURATION}_bucket`, { operation: 'encrypt', result: 'success', le: '+Inf' })).toBe(2);
  });

  it('labels the algorithm actually used', async () => {
    await boot({ encryption: { algorithm: 'ChaCha20-Poly1305' } });
    await decrypt(await encrypt('x'));
    const text = await scrape();
    expect(sampleValue(text, M.OPERATIONS, { operation: 'encrypt', algorithm: 'ChaCha20-Poly1305', result: 'success' })).toBe(1);
    expect(sampleValue(text, M.OPERATIONS, { operation: 'decrypt', algorithm: 'ChaCha20-Poly1305', result: 'success' })).toBe(1);
  });

  it('observes the compression ratio of compressed payloads only', async () => {
    await boot({ encryption: { enableCompression: true, compressionThreshold: 100 } });
    const big = 'abcdefgh'.repeat(1000);
    expect(await decrypt(await encrypt(big))).toEqual({ ok: true, value: big });
    await encrypt('too small to compress');

    const text = await scrape();
    for (const operation of ['encrypt', 'decrypt']) {
      expect(sampleValue(text, `${M.COMPRESSION_RATIO}_count`, { operation })).toBe(1);
      const ratio = sampleValue(text, `${M.COMPRESSION_RATIO}_sum`, { operation })!;
      expect(ratio).toBeGreaterThan(0);
      expect(ratio).toBeLessThan(0.05);
      expect(sampleValue(text, `${M.COMPRESSION_RATIO}_bucket`, { operation, le: '0.05' })).toBe(1);
    }
    // Bytes count the plaintext before compression.
    expect(sampleValue(text, M.PLAINTEXT_BYTES, { operation: 'decrypt' })).toBe(big.length);
    expect(sampleValue(text, M.PLAINTEXT_BYTES, { operation: 'encrypt' })).toBe(big.length + 'too small to compress'.length);
  });

  it('computes the active key age and version at scrape time, and counts rotations', async () => {
    await boot();
    await child.call('advanceClock', { ms: 90_000 });
    let text = await scrape();
    expect(sampleValue(text, M.ACTIVE_KEY_AGE)).toBe(90);
    expect(sampleValue(text, M.ACTIVE_KEY_VERSION)).toBe(1);
    expect(sampleValue(text, M.KEY_ROTATIONS)).toBe(0);

    await child.call('advanceClock', { ms: 30_500 });
    expect(sampleValue(await scrape(), M.ACTIVE_KEY_AGE)).toBe(120.5);

    await child.call('rotate');
    await child.call('advanceClock', { ms: 2_000 });
    text = await scrape();
    expect(sampleValue(text, M.ACTIVE_KEY_AGE)).toBe(2);
    expect(sampleValue(text, M.ACTIVE_KEY_VERSION)).toBe(2);
    expect(sampleValue(text, M.KEY_ROTATIONS)).toBe(1);
  });

  it('counts decryptions that fell back from an explicit key to the key ring', async () => {
    await boot();
    expect(await decrypt(await encrypt('ring key'), { key: randomBytes(32) })).toEqual({ ok: true, value: 'ring key' });
    const own = randomBytes(32);
    expect(await decrypt(await encrypt('own key', { key: own }), { key: own })).toEqual({ ok: true, value: 'own key' });
    expect(sampleValue(await scrape(), M.KEY_FALLBACK_DECRYPTIONS)).toBe(1);
  });

  it('counts requests refused by the interceptor, by reason only', async () => {
    await boot();
    const ciphertext = await child.call<string>('encryptToString', { value: { amount: 12 }, options: { context: 'payments' } });
    await request(url).post('/payments').send({ ciphertext }).expect(200, { accepted: 12 });
    // Letters that can't turn up by chance in a number of the scrape (a duration sum).
    const forged = 'card-qzxwvkjhqzxwvkjh';
    await request(url).post('/payments').send({ ciphertext: forged }).expect(400);
    await request(url).post('/payments').send({ ciphertext: ciphertext.slice(0, -4) + 'AAAA' }).expect(400);
    await request(url).post('/payments').send({ amount: 12 }).expect(400);

    const text = await scrape();
    const rejected = parseSamples(text).filter((sample) => sample.name === M.REJECTED_REQUESTS);
    expect(rejected.reduce((total, sample) => total + sample.value, 0)).toBe(3);
    expect(sampleValue(text, M.REJECTED_REQUESTS, { reason: 'DECRYPTION_FAILED' })).toBe(2);
    for (const sample of rejected) {
      expect(Object.keys(sample.labels)).toEqual(['reason']);
      expect(sample.labels.reason).toMatch(/^[A-Z_]+$/);
    }
    expect(text).not.toContain('qzxw');
    expect(text).not.toContain('field=');
  });

  it('folds a reason that is not an error code, so a label cannot carry data', async () => {
    await boot();
    await child.call('emit', { event: { type: 'request-rejected', field: 'card.number', reason: 'KEY_NOT_FOUND' } });
    await child.call('emit', { event: { type: 'request-rejected', field: 'email', reason: 'value qzxw vkjh is bad' } });
    const text = await scrape();
    expect(sampleValue(text, M.REJECTED_REQUESTS, { reason: 'KEY_NOT_FOUND' })).toBe(1);
    expect(sampleValue(text, M.REJECTED_REQUESTS, { reason: 'OTHER' })).toBe(1);
    expect(text).not.toContain('qzxw');
    expect(text).not.toContain('card');
  });

  it('never exposes plaintext, key ids or key material', async () => {
    await boot();
    // Random letters outside 0-9a-f, so no 6-character slice can turn up by chance in a number or hex id.
    const plaintext = `Qx7-${[...randomBytes(24)].map((byte) => String.fromCharCode(0x67 + (byte % 20))).join('')}-zebra`;
    await decrypt(await encrypt(plaintext));
    await decrypt(await child.call('encryptToString', { value: { secret: plaintext } }));
    await child.call('rotate');
    const text = await scrape();

    for (let start = 0; start + 6 <= plaintext.length; start++) {
      expect(text).not.toContain(plaintext.slice(start, start + 6));
    }
    const keys = await child.call<{ id: string }[]>('listKeys');
    expect(keys).toHaveLength(2);
    for (const key of keys) expect(text).not.toContain(key.id);
    const { masterKey, wrappedKeys } = await child.call<{ masterKey: string[]; wrappedKeys: string[] }>('secrets');
    for (const secret of [...masterKey, ...wrappedKeys]) expect(text).not.toContain(secret);
    const labelNames = new Set(parseSamples(text).flatMap((sample) => Object.keys(sample.labels)));
    expect([...labelNames].sort()).toEqual(['algorithm', 'le', 'operation', 'result']);
  });

  it('declares each metric once, snake_case with the common prefix and a unit suffix', async () => {
    await boot();
    const text = await scrape();
    const declared = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name, type]);
    expect(declared).toHaveLength(10);
    expect(new Map(declared as [string, string][])).toEqual(new Map([
      [M.OPERATIONS, 'counter'],
      [M.OPERATION_DURATION, 'histogram'],
      [M.PLAINTEXT_BYTES, 'counter'],
      [M.CIPHERTEXT_BYTES, 'counter'],
      [M.COMPRESSION_RATIO, 'histogram'],
      [M.ACTIVE_KEY_AGE, 'gauge'],
      [M.ACTIVE_KEY_VERSION, 'gauge'],
      [M.KEY_ROTATIONS, 'counter'],
      [M.KEY_FALLBACK_DECRYPTIONS, 'counter'],
      [M.REJECTED_REQUESTS, 'counter'],
    ]));
    for (const [name] of declared) expect(name).toMatch(/^nestjs_encryption_[a-z_]+_(total|seconds|ratio|version)$/);
  });

  it('starts from zero after the registry is cleared and a new app boots', async () => {
    await boot();
    await encrypt('one');
    expect(sampleValue(await scrape(), M.OPERATIONS, { operation: 'encrypt', algorithm: 'AES-256-GCM', result: 'success' })).toBe(1);
    await child.call('close');
    await boot();
    expect(sampleValue(await scrape(), M.OPERATIONS, { operation: 'encrypt', algorithm: 'AES-256-GCM', result: 'success' })).toBeUndefined();
    await encrypt('two');
    expect(sampleValue(await scrape(), M.OPERATIONS, { operation: 'encrypt', algorithm: 'AES-256-GCM', result: 'success' })).toBe(1);
  });

  it('is optional: without it nothing listens and /metrics has no encryption series', async () => {
    await boot({ integrations: [] });
    expect(await child.call('eventsObserved')).toBe(false);
    expect(await decrypt(await encrypt('still works'))).toEqual({ ok: true, value: 'still works' });
    await request(url).get('/metrics').expect(404);

    await boot();
    expect(await child.call('eventsObserved')).toBe(true);
  });
});
