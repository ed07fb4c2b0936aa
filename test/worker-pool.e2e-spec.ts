import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import type { NodeBuild } from './fixtures/operations/node-build.js';
import { buildForNode } from './fixtures/operations/node-build.js';

const run = promisify(execFile);

/**
 * The worker pool for real: worker threads can't run TypeScript, so the library is transpiled to
 * plain ES modules (as in dist/) and exercised in a Node child process, where `CryptoWorkerPool`
 * finds `parallel/crypto.worker.js` beside itself through `import.meta.url`.
 */
const CHILD = `
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { NestFactory } from '@nestjs/core';

import { EncryptionModule, EncryptionService, DecryptionError } from './libs/encryption/src/index.js';
import { CryptoWorkerPool } from './libs/encryption/src/parallel/crypto-worker-pool.js';

const boot = async (options) => {
  const app = await NestFactory.createApplicationContext(EncryptionModule.forRoot(options), { logger: false });
  return { app, service: app.get(EncryptionService), pool: app.get(CryptoWorkerPool) };
};
const out = {};
const MiB = 1024 * 1024;
const masterKey = randomBytes(32);

const pooled = await boot({ workerPool: { size: 2, threshold: 256 * 1024 }, enableCompression: true });
const plain = await boot({ workerPool: { size: 0 } });
out.sizes = [pooled.pool.size, plain.pool.size];
out.beforeUse = pooled.pool.completedTasks;

// Small payloads stay on the calling thread.
await pooled.service.decrypt(await pooled.service.encrypt('small'));
out.afterSmall = pooled.pool.completedTasks;

// A large one is sealed in a worker and opened in a worker.
const big = randomBytes(MiB);
const envelope = await pooled.service.encrypt(big);
out.afterEncrypt = pooled.pool.completedTasks;
out.roundTrip = (await pooled.service.decrypt(envelope)).equals(big);
out.afterDecrypt = pooled.pool.completedTasks;
// Compressible large payloads are compressed in the worker too.
const text = 'lorem ipsum dolor sit amet '.repeat(40_000);
const compressed = await pooled.service.encrypt(text);
out.compressed = compressed.length < text.length / 10 && (await pooled.service.decrypt(compressed)) === text;
// Tampering is still detected in a worker.
const tampered = Buffer.from(envelope);
tampered[tampered.length - 100] ^= 1;
try { await pooled.service.decrypt(tampered); out.tamperedRejected = false; } catch (error) { out.tamperedRejected = error instanceof DecryptionError; }

// A batch of 16 large payloads spreads over the workers; the results are ordinary envelopes.
const before = pooled.pool.completedTasks;
const items = Array.from({ length: 16 }, () => randomBytes(MiB));
const sealed = await pooled.service.encryptMany(items, { failFast: true });
out.batchTasks = pooled.pool.completedTasks - before;
// Each large envelope has memory of its own: keeping one doesn't keep the rest of its task alive.
out.ownMemory = sealed.every((envelope) => envelope.byteOffset === 0 && envelope.buffer.byteLength === envelope.length);
const opened = await plain.service.decryptMany(sealed);
out.batchOpensElsewhere = opened.every((r) => !r.ok); // other ring: unknown key
const reopened = await pooled.service.decryptMany(sealed, { failFast: true });
out.batchRoundTrip = reopened.every((value, i) => value.equals(items[i]));
out.threads = pooled.pool.size;

// With the default threshold (4 MiB), a batch of 1 MiB payloads is shared between the workers and the
// calling thread (any item smaller than the threshold may be sealed there); a 5 MiB one only goes to a worker.
const shared = await boot({ workerPool: { size: 2 }, enableCompression: false });
const unpooled = await boot({ workerPool: { size: 0 }, enableCompression: false });
const key = randomBytes(32);
const mixed = [...Array.from({ length: 20 }, () => randomBytes(MiB)), randomBytes(5 * MiB), 'text', { json: [1, 2] }, Buffer.alloc(0), randomBytes(300 * 1024)];
const originals = mixed.map((item) => (Buffer.isBuffer(item) ? Buffer.from(item) : item));
const tasksBefore = shared.pool.completedTasks;
const fromPool = await shared.service.encryptMany(mixed, { failFast: true, key });
out.sharedTasks = shared.pool.completedTasks - tasksBefore;
// The shared memory the pool keeps for the next tasks holds no plaintext: the workers wiped what they sealed.
// (Checked before any decryption: staged ciphertexts are not secret and are not wiped.)
const kept = shared.pool.staging.free;
out.stagingKept = kept.length;
out.stagingWiped = kept.every((buffer) => new Uint8Array(buffer).every((byte) => byte === 0));
const fromMain = await unpooled.service.encryptMany(mixed, { failFast: true, key });
// The callers' buffers are neither detached nor changed.
out.inputsIntact = mixed.every((item, i) => !Buffer.isBuffer(item) || (item.byteLength === originals[i].byteLength && item.equals(originals[i])));
const same = (values) => values.every((value, i) => (Buffer.isBuffer(value) ? value.equals(originals[i]) : JSON.stringify(value) === JSON.stringify(originals[i])));
// Pooled envelopes open without the pool and the other way round, in input order.
out.poolToMain = same(await unpooled.service.decryptMany(fromPool, { failFast: true, key }));
const opensBefore = shared.pool.completedTasks;
out.mainToPool = same(await shared.service.decryptMany(fromMain, { failFast: true, key }));
out.sharedOpens = shared.pool.completedTasks - opensBefore;
// A tampered item of a large batch fails alone, wherever it was opened.
const withTampered = fromPool.slice();
withTampered[3] = Buffer.from(withTampered[3]);
withTampered[3][withTampered[3].length - 5] ^= 1;
const settled = await shared.service.decryptMany(withTampered, { key });
out.tamperedAlone = settled.every((result, i) => (i === 3 ? !result.ok && result.error instanceof DecryptionError : result.ok));
out.distinctNonces = new Set(fromPool.map((envelope) => envelope.toString('base64'))).size === mixed.length;

// A large batch of JSON documents: the calling thread encodes them as the workers take tasks, in input
// order. Items that can't be encoded fail alone (non-finite number, undefined), in their places.
// (A pool of its own, whose staged memory has held plaintexts only.)
const jsonPooled = await boot({ workerPool: { size: 2 }, enableCompression: false });
const documents = Array.from({ length: 6000 }, (_, i) => ({ id: i, note: 'x'.repeat(900 + (i % 50)) }));
const withBad = documents.slice();
withBad[17] = Infinity;
withBad[4500] = undefined;
const jsonTasksBefore = jsonPooled.pool.completedTasks;
const jsonResults = await jsonPooled.service.encryptMany(withBad, { key });
out.jsonTasks = jsonPooled.pool.completedTasks - jsonTasksBefore;
out.jsonFailures = jsonResults.flatMap((result, i) => (result.ok ? [] : [[i, result.error.code, result.error.message]]));
const jsonOpened = await unpooled.service.decryptMany(jsonResults.map((result) => (result.ok ? result.value : Buffer.alloc(0))), { key });
out.jsonRoundTrip = jsonOpened.every((result, i) => (i === 17 || i === 4500 ? !result.ok : result.ok && JSON.stringify(result.value) === JSON.stringify(documents[i])));
// Uncompressed (enableCompression: false): the header ends with the nonce, right before the ciphertext.
const nonceOf = (envelope, i) => {
  const headerEnd = envelope.length - 16 - Buffer.byteLength(JSON.stringify(documents[i]));
  return envelope.subarray(headerEnd - 12, headerEnd).toString('hex');
};
out.jsonDistinctNonces = new Set(jsonResults.flatMap((result, i) => (result.ok ? [nonceOf(result.value, i)] : []))).size === 5998;
// Sized from its first items, this batch would stay here; encoded in full, it is over the threshold.
const lateLarge = [...Array.from({ length: 64 }, (_, i) => 'small ' + i), ...Array.from({ length: 10 }, (_, i) => String(i).repeat(600 * 1024))];
const lateTasksBefore = jsonPooled.pool.completedTasks;
const lateSealed = await jsonPooled.service.encryptMany(lateLarge, { key, failFast: true });
out.lateLargeTasks = jsonPooled.pool.completedTasks - lateTasksBefore;
out.lateLargeRoundTrip = JSON.stringify(await unpooled.service.decryptMany(lateSealed, { key, failFast: true })) === JSON.stringify(lateLarge);
// failFast: the first failing item's own error, though later items were already with the workers.
const failFastError = async (items) => jsonPooled.service.encryptMany(items, { key, failFast: true }).then(() => 'resolved', (error) => error.message);
const lateBad = documents.slice();
lateBad[5000] = () => 1;
out.failFastLate = await failFastError(lateBad);
out.failFastFirst = await failFastError(withBad);
// Tasks already with the workers when failFast rejected finish and give back their staged memory.
await new Promise((resolve) => setTimeout(resolve, 500));
out.stagingKeptAfterJson = jsonPooled.pool.staging.free.length;
out.stagingWipedAfterJson = jsonPooled.pool.staging.free.every((buffer) => new Uint8Array(buffer).every((byte) => byte === 0));

await jsonPooled.app.close();
await shared.app.close();
await unpooled.app.close();

await pooled.app.close();
await plain.app.close();
out.mainThread = threadId;
console.log(JSON.stringify(out));
`;

describe('CryptoWorkerPool (built library, real worker threads)', () => {
  let build: NodeBuild;

  beforeAll(() => {
    build = buildForNode();
    writeFileSync(join(build.outDir, 'pool-check.mjs'), CHILD);
  });

  afterAll(() => build?.remove());

  it('seals and opens large payloads and batches in workers (and shares batches with the main thread), small ones on the main thread, and closes with the module', async () => {
    // The child must exit on its own after app.close(): a pool left open would keep it alive until the timeout.
    const { stdout } = await run(process.execPath, [join(build.outDir, 'pool-check.mjs')], {
      cwd: build.outDir,
      env: { ...process.env, NODE_OPTIONS: '' },
      timeout: 120_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(out.sizes).toEqual([2, 0]);
    expect(out.beforeUse).toBe(0);
    expect(out.afterSmall).toBe(0);
    expect(out.afterEncrypt).toBe(1);
    expect(out.roundTrip).toBe(true);
    expect(out.afterDecrypt).toBe(2);
    expect(out.compressed).toBe(true);
    expect(out.tamperedRejected).toBe(true);
    // 16 MiB in tasks of several 1 MiB payloads (smaller ones towards the end), fewer hand-offs than payloads.
    expect(out.batchTasks).toBeGreaterThan(1);
    expect(out.batchTasks).toBeLessThan(16);
    expect(out.ownMemory).toBe(true);
    expect(out.batchOpensElsewhere).toBe(true);
    expect(out.batchRoundTrip).toBe(true);
    expect(out.mainThread).toBe(0);
    // 25 items, several to a task; how many the calling thread took depends on timing.
    expect(out.sharedTasks).toBeGreaterThan(0);
    expect(out.sharedTasks).toBeLessThan(22);
    expect(out.inputsIntact).toBe(true);
    expect(out.poolToMain).toBe(true);
    expect(out.mainToPool).toBe(true);
    expect(out.distinctNonces).toBe(true);
    expect(out.stagingKept).toBeGreaterThan(0);
    expect(out.stagingWiped).toBe(true);
    // decryptMany opens the 5 MiB envelope (at least the threshold) in a worker, the others here.
    expect(out.sharedOpens).toBe(1);
    expect(out.tamperedAlone).toBe(true);
    // About 5.5 MiB of JSON in tasks of at most 512 KiB.
    expect(out.jsonTasks).toBeGreaterThanOrEqual(11);
    expect(out.jsonFailures).toEqual([
      [17, 'INVALID_INPUT', 'Cannot encrypt a non-finite number: JSON has no representation for it'],
      [4500, 'INVALID_INPUT', expect.stringContaining('undefined')],
    ]);
    expect(out.jsonRoundTrip).toBe(true);
    expect(out.jsonDistinctNonces).toBe(true);
    expect(out.lateLargeTasks).toBeGreaterThan(0);
    expect(out.lateLargeRoundTrip).toBe(true);
    expect(out.failFastLate).toEqual(expect.stringContaining('function'));
    expect(out.failFastFirst).toBe('Cannot encrypt a non-finite number: JSON has no representation for it');
    expect(out.stagingKeptAfterJson).toBeGreaterThan(0);
    expect(out.stagingWipedAfterJson).toBe(true);
  }, 150_000);
});
