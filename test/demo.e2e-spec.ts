import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Response } from 'supertest';
import request from 'supertest';

import { unwrapKey } from '../libs/encryption/src/crypto/key-wrap.js';
import { ENCRYPTION_METRICS } from '../libs/encryption/src/metrics/encryption-metrics.constants.js';
import { sampleValue } from './fixtures/operations/prometheus-text.js';
import type { DemoBuild, DemoProcess, StoredCustomer } from './support/demo-app.js';
import { buildDemoForNode, keyIdOf, personalOf, startDemoProcess } from './support/demo-app.js';
import { createEncryptionTestApp } from './support/encryption-test-app.js';

/**
 * The demo app (apps/demo) end to end, on Express and Fastify. It runs in a child Node process (see
 * test/support/demo-app.child.ts: `@willsoto/nestjs-prometheus` can't load under Jest here), so
 * "app.get(EncryptionService)" and "app.get(CustomersRepository)" are IPC calls into that process.
 */

const ADAPTERS = ['express', 'fastify'] as const;
const M = ENCRYPTION_METRICS;
const ADMIN_TOKEN = randomBytes(16).toString('hex');
const SENSITIVE = ['email', 'phone', 'nationalId'] as const;
const DEFAULT_MAX_FIELD_LENGTH = 65_536;
/** Starting a Node process that loads Nest, Express and Fastify takes seconds on a busy 2-core machine. */
const PROCESS_TIMEOUT_MS = 120_000;

interface CustomerInput {
  name: string;
  email: string;
  phone?: string;
  nationalId: string;
}

type Json = Record<string, unknown>;

const ADA: CustomerInput = {
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  phone: '+44 20 7946 0958',
  nationalId: 'QQ123456C',
};
const GRACE: CustomerInput = { name: 'Grace Hopper', email: 'grace@example.com', nationalId: '078-05-1120' };
const LINUS: CustomerInput = {
  name: 'Linus Torvalds',
  email: 'linus@example.com',
  phone: '+358 40 123 4567',
  nationalId: 'FI-131169',
};

const rejection = (field: string, reason: string, message: string) => ({
  statusCode: 400,
  error: 'Bad Request',
  message,
  field,
  reason,
});
const undecryptable = (field: string) =>
  rejection(field, 'DECRYPTION_FAILED', `Encrypted field "${field}" could not be decrypted`);
const unauthorized = { statusCode: 401, error: 'Unauthorized', message: 'A valid admin token is required' };

/** The envelope with one bit of its ciphertext flipped. */
function flipBit(ciphertext: string): string {
  const envelope = Buffer.from(ciphertext, 'base64url');
  envelope[envelope.length - 20] ^= 0x01;
  return envelope.toString('base64url');
}

/** The envelope without its last bytes (part of the tag). */
function truncate(ciphertext: string): string {
  const envelope = Buffer.from(ciphertext, 'base64url');
  return envelope.subarray(0, envelope.length - 5).toString('base64url');
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

let build: DemoBuild;
let root: string;
let boots = 0;

beforeAll(() => {
  build = buildDemoForNode();
  root = mkdtempSync(join(tmpdir(), 'demo-e2e-'));
}, PROCESS_TIMEOUT_MS);
afterAll(() => {
  build?.remove();
  rmSync(root, { recursive: true, force: true });
});

/** Environment for `loadDemoConfig`: a file key store and a development master key in a fresh directory. */
function fileEnv(adapter: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dir = join(root, `app-${++boots}`);
  return {
    DEMO_ADAPTER: adapter,
    DEMO_ADMIN_TOKEN: ADMIN_TOKEN,
    KEY_STORE: 'file',
    KEY_STORE_PATH: join(dir, 'keyring.json'),
    DEV_MASTER_KEY_PATH: join(dir, 'dev-master-key'),
    ...extra,
  };
}

const memoryEnv = (adapter: string): NodeJS.ProcessEnv => ({
  DEMO_ADAPTER: adapter,
  DEMO_ADMIN_TOKEN: ADMIN_TOKEN,
  KEY_STORE: 'memory',
});

/**
 * Every secret behind a file key store, in every encoding a leak could take: the master key, each
 * data key (unwrapped here with the master key) and the wrapped keys.
 */
function secretsOf(env: NodeJS.ProcessEnv): string[] {
  const masterKey = Buffer.from(readFileSync(env.DEV_MASTER_KEY_PATH!, 'utf8').trim(), 'base64');
  const document = JSON.parse(readFileSync(env.KEY_STORE_PATH!, 'utf8')) as {
    ring: { keys: { id: string; wrappedKey: string }[] };
  };
  const dataKeys = document.ring.keys.map(({ id, wrappedKey }) => {
    const key = unwrapKey(masterKey, id, wrappedKey);
    if (!key) throw new Error(`${id} does not unwrap with the development master key`);
    return key;
  });
  return [
    ...[masterKey, ...dataKeys].flatMap((key) => [
      key.toString('base64'),
      key.toString('base64url'),
      key.toString('hex'),
    ]),
    ...document.ring.keys.map((key) => key.wrappedKey),
  ];
}

describe.each(ADAPTERS)('demo app (%s)', (adapter) => {
  let demo: DemoProcess;
  let url: string;
  const http = () => request(url);
  const admin = (req: request.Test) => req.set('Authorization', `Bearer ${ADMIN_TOKEN}`);

  beforeAll(async () => {
    demo = await startDemoProcess(build);
  }, PROCESS_TIMEOUT_MS);
  afterAll(async () => {
    await demo?.stop();
  });

  async function create(customer: CustomerInput): Promise<Json> {
    return (await http().post('/customers').send(customer).expect(201)).body as Json;
  }

  async function decrypted(ciphertext: unknown, context?: Record<string, string>): Promise<unknown> {
    expect(typeof ciphertext).toBe('string');
    const result = await demo.decrypt(ciphertext as string, context && { context });
    if (!result.ok) throw new Error(`did not decrypt: ${result.code}`);
    return result.value;
  }

  /** A response customer: id, name and createdAt in clear; the personal fields as ciphertexts of the input. */
  async function expectEncryptedCustomer(body: Json, customer: CustomerInput): Promise<void> {
    const present = SENSITIVE.filter((field) => customer[field] !== undefined);
    expect(Object.keys(body).sort()).toEqual(['createdAt', 'id', 'name', ...present].sort());
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(body.name).toBe(customer.name);
    expect(new Date(body.createdAt as string).toISOString()).toBe(body.createdAt);
    for (const field of present) {
      expect(body[field]).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(body[field]).not.toContain(customer[field]);
      await expect(decrypted(body[field])).resolves.toBe(customer[field]);
    }
  }

  async function plaintextOf(id: unknown): Promise<Json> {
    return (await admin(http().get(`/customers/${id as string}/plaintext`)).expect(200)).body as Json;
  }

  async function scrape(): Promise<string> {
    const res = await http()
      .get('/metrics')
      .expect(200)
      .expect('Content-Type', /text\/plain/);
    return res.text;
  }

  const rejectedCount = (text: string, reason: string) => sampleValue(text, M.REJECTED_REQUESTS, { reason }) ?? 0;

  describe('customers', () => {
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      env = fileEnv(adapter);
      url = await demo.boot(env);
    });

    it('POST /customers answers 201 with the personal fields as ciphertexts of the values sent', async () => {
      const body = await create(ADA);
      await expectEncryptedCustomer(body, ADA);
      // Made with the active key.
      const active = await demo.activeKey();
      for (const field of SENSITIVE) expect(keyIdOf(body[field] as string)).toBe(active.id);
    });

    it('GET /customers/:id answers the same record, freshly encrypted', async () => {
      const created = await create(GRACE);
      const res = await http()
        .get(`/customers/${created.id as string}`)
        .expect(200);
      const body = res.body as Json;
      await expectEncryptedCustomer(body, GRACE);
      expect(body).toMatchObject({ id: created.id, createdAt: created.createdAt });
      // A new nonce each time: the same value never gives the same ciphertext twice.
      expect(body.email).not.toBe(created.email);
    });

    it('GET /customers lists every record with its personal fields encrypted', async () => {
      const created = await Promise.all([create(ADA), create(LINUS)]);
      const res = await http().get('/customers').expect(200);
      const list = res.body as Json[];
      for (const [index, customer] of [ADA, LINUS].entries()) {
        const entry = list.find((item) => item.id === created[index].id);
        expect(entry).toBeDefined();
        await expectEncryptedCustomer(entry!, customer);
      }
      for (const plaintext of [ADA, GRACE, LINUS].flatMap((customer) => SENSITIVE.map((field) => customer[field]))) {
        if (plaintext) expect(res.text).not.toContain(plaintext);
      }
    });

    it('keeps no plaintext at rest: the personal fields are one ciphertext bound to the record', async () => {
      const created = await create(LINUS);
      const id = created.id as string;
      const stored = (await demo.stored(id)) as StoredCustomer;
      expect(stored).toEqual({ id, name: LINUS.name, createdAt: created.createdAt, personal: expect.any(String) });
      const text = JSON.stringify(stored);
      for (const field of SENSITIVE) expect(text).not.toContain(LINUS[field]);
      await expect(decrypted(stored.personal, { record: id })).resolves.toEqual(personalOf(LINUS));
      // Bound: without its context or under another record, it does not decrypt.
      const other = (await create(GRACE)).id as string;
      for (const context of [undefined, { record: other }, { record: id, field: 'email' }] as (
        Record<string, string> | undefined
      )[]) {
        await expect(demo.decrypt(stored.personal, context && { context })).resolves.toMatchObject({
          ok: false,
          code: 'DECRYPTION_FAILED',
        });
      }
    });

    it('GET /customers/:id/plaintext reveals a record with the admin token only', async () => {
      const created = await create(ADA);
      await expect(plaintextOf(created.id)).resolves.toEqual({ ...ADA, id: created.id, createdAt: created.createdAt });
      const res = await http()
        .get(`/customers/${created.id as string}/plaintext`)
        .expect(401);
      expect(res.body).toEqual(unauthorized);
    });

    it('GET /customers/:id answers 404 for an unknown id and 400 for one that is not a UUID', async () => {
      const unknown = '3f1c2b7e-8a4d-4c3e-9b1a-2d5e6f708192';
      expect((await http().get(`/customers/${unknown}`).expect(404)).body).toMatchObject({
        statusCode: 404,
        message: `No customer ${unknown}`,
      });
      expect((await http().get('/customers/42').expect(400)).body).toMatchObject({ statusCode: 400 });
    });

    it('POST /customers with an invalid email answers the ValidationPipe 400 and stores nothing', async () => {
      const before = ((await http().get('/customers').expect(200)).body as Json[]).length;
      const res = await http()
        .post('/customers')
        .send({ ...ADA, email: 'not-an-email' })
        .expect(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
      const extra = await http()
        .post('/customers')
        .send({ ...ADA, role: 'admin' })
        .expect(400);
      expect(extra.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: ['property role should not exist'],
      });
      expect(((await http().get('/customers').expect(200)).body as Json[]).length).toBe(before);
    });

    it('POST /customers/import decrypts the encrypted fields before the handler, which stores the plaintext', async () => {
      const body = {
        name: LINUS.name,
        email: await demo.encryptToString(LINUS.email),
        phone: await demo.encryptToString(LINUS.phone!),
        nationalId: await demo.encryptToString(LINUS.nationalId),
      };
      const res = await http().post('/customers/import').send(body).expect(201);
      const created = res.body as Json;
      await expectEncryptedCustomer(created, LINUS);
      await expect(plaintextOf(created.id)).resolves.toEqual({
        ...LINUS,
        id: created.id,
        createdAt: created.createdAt,
      });
      const stored = (await demo.stored(created.id as string))!;
      await expect(decrypted(stored.personal, { record: created.id as string })).resolves.toEqual(personalOf(LINUS));
    });

    it('POST /customers/import validates the decrypted plaintext: an encrypted non-email gets the ValidationPipe 400', async () => {
      const email = await demo.encryptToString('not-an-email');
      const res = await http()
        .post('/customers/import')
        .send({ name: GRACE.name, email, nationalId: await demo.encryptToString(GRACE.nationalId) })
        .expect(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
      expect(res.text).not.toContain(email);
    });
  });

  describe('rejected encrypted fields on POST /customers/import', () => {
    const tooLong = `Encrypted field "email" exceeds the maximum length of ${DEFAULT_MAX_FIELD_LENGTH} characters`;
    // [case, the value sent as `email`, expected body, the error code the metric counts]
    const cases: [string, () => Promise<unknown>, object, string][] = [
      [
        'not base64url',
        async () => 'ada@example.com is not a ciphertext!',
        undecryptable('email'),
        'DECRYPTION_FAILED',
      ],
      [
        'truncated',
        async () => truncate(await demo.encryptToString(ADA.email)),
        undecryptable('email'),
        'DECRYPTION_FAILED',
      ],
      [
        'tampered (one bit flipped)',
        async () => flipBit(await demo.encryptToString(ADA.email)),
        undecryptable('email'),
        'DECRYPTION_FAILED',
      ],
      [
        "made by another app's key ring",
        async () => {
          const other = await createEncryptionTestApp({});
          try {
            return await other.encryption.encryptToString(ADA.email);
          } finally {
            await other.close();
          }
        },
        undecryptable('email'),
        'KEY_NOT_FOUND',
      ],
      [
        'encrypted with a context',
        async () => demo.encryptToString(ADA.email, { context: 'customers.email' }),
        undecryptable('email'),
        'DECRYPTION_FAILED',
      ],
      [
        'decrypting to a number',
        async () => demo.encryptToString(42),
        rejection('email', 'INVALID_TYPE', 'Encrypted field "email" does not decrypt to a string'),
        'INVALID_TYPE',
      ],
      [
        'not a string',
        async () => 42,
        rejection('email', 'INVALID_TYPE', 'Encrypted field "email" must be a ciphertext string'),
        'INVALID_TYPE',
      ],
      [
        'longer than maxFieldLength',
        // A real ciphertext, so it is refused for its length, not because it fails to decrypt.
        async () => demo.encryptToString(`${'a'.repeat(50_000)}@example.com`, { compress: false }),
        rejection('email', 'CIPHERTEXT_TOO_LARGE', tooLong),
        'CIPHERTEXT_TOO_LARGE',
      ],
    ];

    beforeAll(async () => {
      url = await demo.boot(memoryEnv(adapter));
    });

    it.each(cases)(
      '%s: 400 naming the field, without the value, counted in /metrics',
      async (name, makeValue, expected, code) => {
        const email = await makeValue();
        if (name === 'longer than maxFieldLength')
          expect((email as string).length).toBeGreaterThan(DEFAULT_MAX_FIELD_LENGTH);
        const body = { name: ADA.name, email, nationalId: await demo.encryptToString(ADA.nationalId) };
        const before = await scrape();
        const count = ((await http().get('/customers').expect(200)).body as Json[]).length;

        const res: Response = await http().post('/customers/import').send(body).expect(400);
        expect(res.body).toEqual(expected);
        if (typeof email === 'string') expect(res.text).not.toContain(email.slice(0, 40));
        expect(res.text).not.toContain(ADA.email);

        const after = await scrape();
        expect(rejectedCount(after, code)).toBe(rejectedCount(before, code) + 1);
        for (const other of ['DECRYPTION_FAILED', 'KEY_NOT_FOUND', 'INVALID_TYPE', 'CIPHERTEXT_TOO_LARGE']) {
          if (other !== code) expect(rejectedCount(after, other)).toBe(rejectedCount(before, other));
        }
        expect(after).not.toContain(ADA.email);
        // The handler never ran.
        expect(((await http().get('/customers').expect(200)).body as Json[]).length).toBe(count);
      },
    );

    it('names the field that failed when several are encrypted', async () => {
      const body = {
        name: ADA.name,
        email: await demo.encryptToString(ADA.email),
        phone: flipBit(await demo.encryptToString(ADA.phone!)),
        nationalId: await demo.encryptToString(ADA.nationalId),
      };
      const res = await http().post('/customers/import').send(body).expect(400);
      expect(res.body).toEqual(undecryptable('phone'));
    });
  });

  describe('POST /customers/envelope', () => {
    beforeAll(async () => {
      url = await demo.boot(memoryEnv(adapter));
    });

    it('accepts the whole body as one ciphertext and answers 201', async () => {
      const res = await http()
        .post('/customers/envelope')
        .send({ ciphertext: await demo.encryptToString({ ...ADA }) })
        .expect(201);
      const created = res.body as Json;
      await expectEncryptedCustomer(created, ADA);
      await expect(plaintextOf(created.id)).resolves.toEqual({ ...ADA, id: created.id, createdAt: created.createdAt });
    });

    it('refuses a plaintext body with 400, even a valid one', async () => {
      const count = ((await http().get('/customers').expect(200)).body as Json[]).length;
      const res = await http().post('/customers/envelope').send(ADA).expect(400);
      expect(res.body).toEqual(
        rejection(
          'body',
          'INVALID_TYPE',
          'Encrypted body must be a JSON object of the form { "ciphertext": "<text>" }',
        ),
      );
      expect(res.text).not.toContain(ADA.email);
      expect(((await http().get('/customers').expect(200)).body as Json[]).length).toBe(count);
    });

    it('refuses an envelope that does not decrypt, and validates the plaintext of one that does', async () => {
      const bound = await demo.encryptToString({ ...ADA }, { context: 'elsewhere' });
      const res = await http().post('/customers/envelope').send({ ciphertext: bound }).expect(400);
      expect(res.body).toEqual(rejection('body', 'DECRYPTION_FAILED', 'Encrypted body could not be decrypted'));
      const invalid = await demo.encryptToString({ ...ADA, email: 'nope' });
      const res2 = await http().post('/customers/envelope').send({ ciphertext: invalid }).expect(400);
      expect(res2.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
    });
  });

  describe('admin keys', () => {
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      env = fileEnv(adapter);
      url = await demo.boot(env);
    });

    it.each([
      ['no Authorization header', undefined],
      ['a wrong token', `Bearer ${randomBytes(16).toString('hex')}`],
      ['the token with another scheme', `Basic ${ADMIN_TOKEN}`],
      ['the token as a prefix of a longer one', `Bearer ${ADMIN_TOKEN}x`],
    ])('answers 401 to %s, and does not rotate', async (_, authorization) => {
      const before = await demo.activeKey();
      for (const req of [http().get('/admin/keys'), http().post('/admin/keys/rotate')]) {
        const res = await (authorization === undefined ? req : req.set('Authorization', authorization)).expect(401);
        expect(res.body).toEqual(unauthorized);
      }
      expect((await demo.activeKey()).id).toBe(before.id);
    });

    it('GET /admin/keys lists key metadata and no key material', async () => {
      const res = await admin(http().get('/admin/keys')).expect(200);
      const active = await demo.activeKey();
      const keys = res.body as Json[];
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({
        id: active.id,
        version: 1,
        state: 'active',
        createdAt: active.createdAt.toISOString(),
      });
      for (const key of keys) {
        for (const property of Object.keys(key)) {
          expect([
            'id',
            'version',
            'state',
            'createdAt',
            'ageMs',
            'encryptions',
            'decryptions',
            'lastUsedAt',
          ]).toContain(property);
        }
      }
      for (const secret of secretsOf(env)) expect(res.text).not.toContain(secret);
    });

    it('POST /admin/keys/rotate makes a new active key; earlier records stay readable and are served under the new key', async () => {
      const before = await create(ADA);
      const oldKey = await demo.activeKey();

      const res = await admin(http().post('/admin/keys/rotate')).expect(200);
      const { active } = res.body as { active: Json };
      expect(active).toMatchObject({ version: 2, state: 'active' });
      expect(active.id).not.toBe(oldKey.id);
      expect((await demo.activeKey()).id).toBe(active.id);
      const keys = (await admin(http().get('/admin/keys')).expect(200)).body as Json[];
      expect(keys.map((key) => [key.id, key.state])).toEqual([
        [active.id, 'active'],
        [oldKey.id, 'decrypt-only'],
      ]);

      // Still readable: the stored ciphertexts were made with the old key, which now only decrypts.
      await expect(plaintextOf(before.id)).resolves.toEqual({ ...ADA, id: before.id, createdAt: before.createdAt });
      const stored = (await demo.stored(before.id as string))!;
      expect(keyIdOf(stored.personal)).toBe(oldKey.id);
      const read = (
        await http()
          .get(`/customers/${before.id as string}`)
          .expect(200)
      ).body as Json;
      await expectEncryptedCustomer(read, ADA);
      for (const field of SENSITIVE) expect(keyIdOf(read[field] as string)).toBe(active.id);
      for (const secret of secretsOf(env)) expect(res.text).not.toContain(secret);
    });
  });

  describe('scheduled rotation', () => {
    beforeAll(async () => {
      url = await demo.boot(fileEnv(adapter, { KEY_ROTATION_INTERVAL_MS: '1500', ROTATION_CHECK_INTERVAL_MS: '100' }));
    });

    it('replaces the active key once it is keyRotationInterval old; earlier records stay readable', async () => {
      const first = await demo.activeKey();
      const created = await create(GRACE);
      for (const field of SENSITIVE) if (created[field]) expect(keyIdOf(created[field] as string)).toBe(first.id);

      await waitFor(async () => (await demo.activeKey()).id !== first.id, 5000);
      const next = await demo.activeKey();
      expect(next.version).toBeGreaterThan(first.version);
      expect(next.createdAt.getTime() - first.createdAt.getTime()).toBeGreaterThanOrEqual(1500);

      await expect(plaintextOf(created.id)).resolves.toEqual({
        ...GRACE,
        id: created.id,
        createdAt: created.createdAt,
      });
      const read = (
        await http()
          .get(`/customers/${created.id as string}`)
          .expect(200)
      ).body as Json;
      await expectEncryptedCustomer(read, GRACE);
      expect(keyIdOf(read.email as string)).not.toBe(first.id);
      expect(sampleValue(await scrape(), M.KEY_ROTATIONS)).toBeGreaterThanOrEqual(1);
    });
  });

  describe('health and metrics', () => {
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      env = fileEnv(adapter);
      url = await demo.boot(env);
    });

    it('GET /health answers 200 with the encryption status, key id and age, and no key material', async () => {
      const active = await demo.activeKey();
      const res = await http().get('/health').expect(200);
      const details = {
        status: 'up',
        keyId: active.id,
        keyVersion: 1,
        keyCreatedAt: active.createdAt.toISOString(),
        keyAgeMs: expect.any(Number),
        keyRotationIntervalMs: 30 * 24 * 60 * 60 * 1000,
        rotationDue: false,
        // The store keeps heartbeats: every live instance holds the same ring revision.
        ringRevision: expect.any(Number),
        liveInstances: expect.any(Number),
        disagreeingInstances: [],
      };
      expect(res.body).toEqual({
        status: 'ok',
        info: { encryption: details },
        error: {},
        details: { encryption: details },
      });
      const { keyAgeMs } = (res.body as { info: { encryption: { keyAgeMs: number } } }).info.encryption;
      expect(keyAgeMs).toBeGreaterThanOrEqual(0);
      expect(keyAgeMs).toBeLessThan(60_000);
      for (const secret of secretsOf(env)) expect(res.text).not.toContain(secret);
    });

    it('GET /metrics counts operations, durations, bytes, rotations and rejections, and shows no plaintext', async () => {
      const before = await scrape();
      const created = await create(ADA);
      await http()
        .get(`/customers/${created.id as string}`)
        .expect(200);
      await http()
        .post('/customers/import')
        .send({ name: ADA.name, email: await demo.encryptToString(ADA.email, { context: 'wrong' }) })
        .expect(400);
      await admin(http().post('/admin/keys/rotate')).expect(200);
      const after = await scrape();

      const delta = (name: string, labels: Record<string, string> = {}) =>
        (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
      const ops = (operation: string, result: string) => ({ operation, algorithm: 'AES-256-GCM', result });
      // POST: 1 envelope of the personal fields encrypted at rest + 3 fields in the response. GET: that envelope
      // decrypted + 3 fields encrypted. Import: 1 IPC-made encryption with a context, then 1 failed decryption.
      expect(delta(M.OPERATIONS, ops('encrypt', 'success'))).toBe(8);
      expect(delta(M.OPERATIONS, ops('decrypt', 'success'))).toBe(1);
      expect(delta(M.OPERATIONS, ops('decrypt', 'failure'))).toBe(1);
      expect(delta(`${M.OPERATION_DURATION}_count`, { operation: 'encrypt', result: 'success' })).toBe(8);
      expect(delta(`${M.OPERATION_DURATION}_bucket`, { operation: 'encrypt', result: 'success', le: '+Inf' })).toBe(8);
      expect(delta(`${M.OPERATION_DURATION}_sum`, { operation: 'encrypt', result: 'success' })).toBeGreaterThan(0);
      const fieldBytes = SENSITIVE.reduce((sum, field) => sum + Buffer.byteLength(ADA[field]!), 0);
      const recordBytes = Buffer.byteLength(JSON.stringify(personalOf(ADA)));
      expect(delta(M.PLAINTEXT_BYTES, { operation: 'encrypt' })).toBe(
        recordBytes + 2 * fieldBytes + Buffer.byteLength(ADA.email),
      );
      expect(delta(M.PLAINTEXT_BYTES, { operation: 'decrypt' })).toBe(recordBytes);
      expect(delta(M.CIPHERTEXT_BYTES, { operation: 'encrypt' })).toBeGreaterThan(3 * fieldBytes);
      expect(delta(M.KEY_ROTATIONS)).toBe(1);
      expect(sampleValue(after, M.ACTIVE_KEY_VERSION)).toBe(2);
      const age = sampleValue(after, M.ACTIVE_KEY_AGE)!;
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(60);
      expect(delta(M.REJECTED_REQUESTS, { reason: 'DECRYPTION_FAILED' })).toBe(1);

      for (const value of [ADA.email, ADA.phone!, ADA.nationalId]) expect(after).not.toContain(value);
      for (const secret of secretsOf(env)) expect(after).not.toContain(secret);
    });
  });

  describe('restart on the same file key store and master key', () => {
    it(
      'keeps the key ring, wrapped under the master key: old ciphertexts decrypt in a new process',
      async () => {
        const env = fileEnv(adapter);
        url = await demo.boot(env);
        const first = await create(ADA);
        await admin(http().post('/admin/keys/rotate')).expect(200);
        const second = await create(LINUS);
        const saved = await Promise.all(
          [first, second].map(async (customer) => ({ customer, stored: (await demo.stored(customer.id as string))! })),
        );
        const keyIds = (await demo.listKeys()).map((key) => key.id);
        await demo.close();

        // On disk: owner-only files, and data keys only in wrapped form.
        expect(statSync(env.KEY_STORE_PATH!).mode & 0o777).toBe(0o600);
        expect(statSync(env.DEV_MASTER_KEY_PATH!).mode & 0o777).toBe(0o600);
        const file = readFileSync(env.KEY_STORE_PATH!, 'utf8');
        const [masterB64, masterB64url, masterHex, ...rest] = secretsOf(env);
        const dataKeyEncodings = rest.slice(0, 3 * keyIds.length);
        for (const secret of [masterB64, masterB64url, masterHex, ...dataKeyEncodings])
          expect(file).not.toContain(secret);

        const restarted = await startDemoProcess(build);
        try {
          url = await restarted.boot(env);
          expect((await restarted.listKeys()).map((key) => key.id)).toEqual(keyIds);
          for (const [{ customer, stored }, input] of [
            [saved[0], ADA],
            [saved[1], LINUS],
          ] as const) {
            for (const field of SENSITIVE) {
              await expect(restarted.decrypt(customer[field] as string)).resolves.toEqual({
                ok: true,
                value: input[field],
              });
            }
            await expect(
              restarted.decrypt(stored.personal, { context: { record: customer.id as string } }),
            ).resolves.toEqual({ ok: true, value: personalOf(input) });
          }
        } finally {
          await restarted.stop();
        }
      },
      PROCESS_TIMEOUT_MS,
    );

    it('refuses to start with another master key', async () => {
      const env = fileEnv(adapter);
      await demo.boot(env);
      await demo.close();
      writeFileSync(env.DEV_MASTER_KEY_PATH!, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
      await expect(demo.boot(env)).rejects.toMatchObject({ name: 'MasterKeyMismatchError' });
    });
  });
});
