import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { INestApplication } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { EncryptionService, KeyManagerService } from 'nestjs-encryption';
import { EncryptionHealthModule } from 'nestjs-encryption/health';
import { EncryptionSchedulingModule } from 'nestjs-encryption/scheduling';
import request from 'supertest';

import { FaultyKeyStore } from './fixtures/operations/faulty-key-store.js';
import { ManualClock } from './fixtures/operations/manual-clock.js';
import type { NodeBuild } from './fixtures/operations/node-build.js';
import { buildForNode } from './fixtures/operations/node-build.js';
import { HEALTH_CHECK_OPTIONS, HealthController } from './fixtures/operations/operations.controllers.js';
import type { HttpAdapterName } from './fixtures/operations/operations-app.js';
import { createOperationsApp } from './fixtures/operations/operations-app.js';
import type { OperationsChild } from './fixtures/operations/operations-child.js';
import { startOperationsChild } from './fixtures/operations/operations-child.js';
import { sampleValue } from './fixtures/operations/prometheus-text.js';

const DAY = 24 * 60 * 60 * 1000;
const ADAPTERS: HttpAdapterName[] = ['express', 'fastify'];
const OPTIONAL_PEERS = ['@nestjs/schedule', '@nestjs/terminus', '@willsoto/nestjs-prometheus', 'prom-client'];
const INTEGRATIONS = ['scheduling', 'health', 'metrics'];
const LIB = 'libs/encryption';

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('operations: scheduled rotation on a real timer', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('rotates a 200 ms key on 50 ms checks, and every earlier ciphertext stays readable', async () => {
    app = await createOperationsApp({
      encryption: { keyRotationInterval: 200, scheduledRotation: { checkIntervalMs: 50 } },
      imports: [ScheduleModule.forRoot(), EncryptionSchedulingModule],
    });
    const keys = app.get(KeyManagerService);
    const encryption = app.get(EncryptionService);
    const written: { version: number; ciphertext: string; value: string }[] = [];

    for (const target of [2, 3]) {
      const value = `written under version ${keys.activeKey.version}`;
      written.push({ version: keys.activeKey.version, ciphertext: await encryption.encryptToString(value), value });
      await waitFor(() => keys.activeKey.version >= target, 3000);
    }
    // Each key was replaced only once it was 200 ms old, and not much later (50 ms checks).
    const created = new Map(keys.listKeys().map((key) => [key.version, key.createdAt.getTime()]));
    for (const version of [2, 3]) {
      const lifetime = created.get(version)! - created.get(version - 1)!;
      expect(lifetime).toBeGreaterThanOrEqual(200);
      // Generous upper bound: CI machines can stall a timer for a second or more.
      expect(lifetime).toBeLessThan(200 + 50 + 2500);
    }
    // The second value was written under a newer key than the first (which one depends on timer jitter).
    expect(written[0].version).toBe(1);
    expect(written[1].version).toBeGreaterThanOrEqual(2);
    for (const { ciphertext, value } of written) await expect(encryption.decrypt(ciphertext)).resolves.toBe(value);
    // Newest first, previous keys all retained.
    expect(keys.listKeys().map((key) => key.version).slice(-3)).toEqual([3, 2, 1]);
  });

  it('stops checking once the app is closed', async () => {
    app = await createOperationsApp({
      encryption: { keyRotationInterval: 100, scheduledRotation: { checkIntervalMs: 20 } },
      imports: [ScheduleModule.forRoot(), EncryptionSchedulingModule],
    });
    const keys = app.get(KeyManagerService);
    await waitFor(() => keys.activeKey.version >= 2, 3000);
    await app.close();
    app = undefined;
    const version = keys.listKeys()[0].version;
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(keys.listKeys()[0].version).toBe(version);
  });
});

describe.each(ADAPTERS)('operations: health endpoint over HTTP (%s)', (adapter) => {
  let app: INestApplication;
  let clock: ManualClock;
  let store: FaultyKeyStore;
  const http = () => request(app.getHttpServer());

  beforeEach(async () => {
    clock = new ManualClock();
    store = new FaultyKeyStore();
    app = await createOperationsApp({
      adapter,
      encryption: { clock, keyStore: store, masterKey: Buffer.alloc(32, 7), keyRotationInterval: 10 * DAY },
      imports: [TerminusModule.forRoot({ logger: false }), EncryptionHealthModule],
      controllers: [HealthController],
      providers: [{ provide: HEALTH_CHECK_OPTIONS, useValue: { gracePeriodMs: DAY, storeTimeoutMs: 200 } }],
    });
  });
  afterEach(() => app.close());

  it('answers 200 with the key id, version and age', async () => {
    clock.advance(DAY);
    const { id } = app.get(KeyManagerService).activeKey;
    const response = await http().get('/health').expect(200);
    expect(response.body).toEqual({
      status: 'ok',
      info: { encryption: expect.objectContaining({ status: 'up', keyId: id, keyVersion: 1, keyAgeMs: DAY, rotationDue: false }) },
      error: {},
      details: { encryption: expect.objectContaining({ status: 'up' }) },
    });
  });

  it('answers 503 once the active key is stale, and 200 again after a rotation', async () => {
    clock.advance(11 * DAY + 1);
    const response = await http().get('/health').expect(503);
    expect(response.body.status).toBe('error');
    expect(response.body.error.encryption).toMatchObject({
      status: 'down',
      keyVersion: 1,
      rotationDue: true,
      reason: expect.stringContaining('keys are not being rotated'),
    });
    await app.get(KeyManagerService).rotate();
    await http().get('/health').expect(200);
  });

  it('answers 503 while the key store is unreachable, without its error text', async () => {
    store.unreachable = true;
    const response = await http().get('/health').expect(503);
    expect(response.body.error.encryption).toMatchObject({ status: 'down', reason: 'The key store is unreachable' });
    expect(response.text).not.toContain('ECONNREFUSED');
    store.unreachable = false;
    await http().get('/health').expect(200);
  });

  it('answers 503 when the key store hangs', async () => {
    store.hang = true;
    const response = await http().get('/health').expect(503);
    expect(response.body.error.encryption.reason).toBe('The key store did not answer within 200 ms');
  });
});

describe('operations: all three integrations in one app on plain Node', () => {
  let build: NodeBuild;
  let child: OperationsChild;

  beforeAll(async () => {
    build = buildForNode();
    child = await startOperationsChild(build);
  });
  afterAll(async () => {
    await child?.call('close').catch(() => undefined);
    await child?.stop();
    build?.remove();
  });

  it('rotates on schedule, reports it in /metrics and /health, and keeps old ciphertexts readable', async () => {
    const { url } = await child.call<{ url: string }>('boot', {
      integrations: ['scheduling', 'health', 'metrics'],
      realClock: true,
      encryption: { keyRotationInterval: 300, scheduledRotation: { checkIntervalMs: 50 } },
      health: { gracePeriodMs: 5000 },
    });
    const old = await child.call<string>('encryptToString', { value: 'before rotation' });
    const scrape = async () => (await request(url).get('/metrics').expect(200)).text;

    await waitFor(async () => (sampleValue(await scrape(), 'nestjs_encryption_key_rotations_total') ?? 0) >= 1, 5000);
    const text = await scrape();
    const version = sampleValue(text, 'nestjs_encryption_active_key_version')!;
    expect(version).toBeGreaterThanOrEqual(2);
    expect(sampleValue(text, 'nestjs_encryption_active_key_age_seconds')).toBeLessThan(1);

    const health = await request(url).get('/health').expect(200);
    expect(health.body.info.encryption.keyVersion).toBeGreaterThanOrEqual(version);
    expect(await child.call('decrypt', { input: old })).toEqual({ ok: true, value: 'before rotation' });

    // The health probe is a real round trip, so it shows up as operations.
    const encryptsBefore = sampleValue(await scrape(), 'nestjs_encryption_operations_total', {
      operation: 'encrypt',
      algorithm: 'AES-256-GCM',
      result: 'success',
    })!;
    await request(url).get('/health').expect(200);
    expect(
      sampleValue(await scrape(), 'nestjs_encryption_operations_total', { operation: 'encrypt', algorithm: 'AES-256-GCM', result: 'success' }),
    ).toBe(encryptsBefore + 1);
  });

  it('the main entry point loads with the optional peers missing; the integrations need them', () => {
    // A resolve hook that makes the optional peers unresolvable, as in an app that never installed them.
    writeFileSync(
      join(build.outDir, 'hide-peers.mjs'),
      `const hidden = ${JSON.stringify(OPTIONAL_PEERS)};
export async function resolve(specifier, context, next) {
  if (hidden.some((name) => specifier === name || specifier.startsWith(name + '/'))) {
    throw Object.assign(new Error('Cannot find package ' + specifier), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}`,
    );
    writeFileSync(
      join(build.outDir, 'register-hide-peers.mjs'),
      `import { register } from 'node:module';\nregister('./hide-peers.mjs', import.meta.url);\n`,
    );
    const entries = [`${LIB}/src/index.ts`, ...INTEGRATIONS.map((name) => `${LIB}/src/${name}/index.ts`)];
    // One process (Nest takes seconds to load here); the main entry point is imported first, alone.
    const output = execFileSync(
      process.execPath,
      ['--import', join(build.outDir, 'register-hide-peers.mjs'), '--input-type=module', '-e', `
import 'reflect-metadata';
for (const entry of ${JSON.stringify(entries.map((entry) => build.path(entry)))}) {
  try { const m = await import(entry); console.log('loaded ' + ('EncryptionModule' in m)); }
  catch (error) { console.log(error.code); }
}`],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
    );
    expect(output.trim().split('\n')).toEqual(['loaded true', 'ERR_MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND']);
  });
});

describe('operations: packaging of the optional integrations', () => {
  const pkg = JSON.parse(readFileSync(join(LIB, 'package.json'), 'utf8'));

  it.each(INTEGRATIONS)('exports nestjs-encryption/%s from its own entry point', (name) => {
    expect(pkg.exports[`./${name}`]).toEqual({ types: `./dist/${name}/index.d.ts`, default: `./dist/${name}/index.js` });
    expect(readdirSync(join(LIB, 'src', name))).toContain('index.ts');
  });

  it('lists the integrations’ packages as optional peers', () => {
    for (const peer of OPTIONAL_PEERS) {
      expect(pkg.peerDependencies[peer]).toEqual(expect.any(String));
      expect(pkg.peerDependenciesMeta[peer]).toEqual({ optional: true });
      expect(pkg.dependencies?.[peer]).toBeUndefined();
    }
  });

  it('keeps the optional peers out of every core file', () => {
    const core = listSources(join(LIB, 'src')).filter((file) => !INTEGRATIONS.some((name) => file.includes(`/src/${name}/`)));
    expect(core.length).toBeGreaterThan(20);
    const importing = core.filter((file) =>
      OPTIONAL_PEERS.some((peer) => new RegExp(`from '${peer}(/[^']*)?'|import\\('${peer}`).test(readFileSync(file, 'utf8'))),
    );
    expect(importing).toEqual([]);
    const index = readFileSync(join(LIB, 'src/index.ts'), 'utf8');
    for (const name of INTEGRATIONS) expect(index).not.toContain(`./${name}/`);
  });
});

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}
