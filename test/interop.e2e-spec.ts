import { randomBytes } from 'node:crypto';

import type { JSONWebKeySet, JWK } from 'jose';
import { calculateJwkThumbprint, CompactEncrypt, exportJWK, generateKeyPair, importJWK } from 'jose';
import request from 'supertest';

import type { DemoBuild, DemoProcess } from './support/demo-app.js';
import { buildDemoForNode, personalOf, startDemoProcess } from './support/demo-app.js';

/**
 * Asymmetric interoperability of the demo app (apps/demo), on Express and Fastify: a client that only
 * knows `GET /.well-known/jwks.json` encrypts a customer with `jose` (as any JOSE library or a browser
 * would) and posts the compact JWE to the `@EncryptedBody()` route `POST /customers/envelope`. The
 * app runs in a child process (see test/support/demo-app.ts).
 */

const ADAPTERS = ['express', 'fastify'] as const;
const ADMIN_TOKEN = randomBytes(16).toString('hex');
const PROCESS_TIMEOUT_MS = 120_000;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

type Json = Record<string, unknown>;

const GRACE = { name: 'Grace Hopper', email: 'grace@example.com', phone: '+1 202 555 0143', nationalId: '078-05-1120' };

const undecryptable = {
  statusCode: 400,
  error: 'Bad Request',
  message: 'Encrypted body could not be decrypted',
  field: 'body',
  reason: 'DECRYPTION_FAILED',
};

/** A compact JWE of `value` made with jose directly to `jwk`, the way a client of the JWKS makes it. */
async function jweFor(jwk: JWK, value: unknown, header: Record<string, unknown> = { cty: 'json' }): Promise<string> {
  return new CompactEncrypt(Buffer.from(JSON.stringify(value)))
    .setProtectedHeader({ alg: jwk.alg!, enc: 'A256GCM', kid: jwk.kid, ...header })
    .encrypt(await importJWK(jwk, jwk.alg));
}

/** One character of the ciphertext segment changed. */
function tamper(jwe: string): string {
  const segments = jwe.split('.');
  const at = Math.floor(segments[3].length / 2);
  segments[3] = segments[3].slice(0, at) + (segments[3][at] === 'A' ? 'B' : 'A') + segments[3].slice(at + 1);
  return segments.join('.');
}

let build: DemoBuild;
beforeAll(() => {
  build = buildDemoForNode();
}, PROCESS_TIMEOUT_MS);
afterAll(() => build?.remove());

describe.each(ADAPTERS)('JWE interoperability with the demo app (%s)', (adapter) => {
  let demo: DemoProcess;
  let url: string;
  const http = () => request(url);
  const jwks = async () => (await http().get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet;
  const admin = (req: request.Test) => req.set('authorization', `Bearer ${ADMIN_TOKEN}`);

  beforeAll(async () => {
    demo = await startDemoProcess(build);
    url = await demo.boot({ DEMO_ADAPTER: adapter, KEY_STORE: 'memory', DEMO_ADMIN_TOKEN: ADMIN_TOKEN });
  }, PROCESS_TIMEOUT_MS);
  afterAll(async () => {
    await demo?.close();
    await demo?.stop();
  });

  async function expectStoredPlaintext(created: Json, input: typeof GRACE): Promise<void> {
    const id = created.id as string;
    // The response carries the personal fields encrypted…
    for (const field of ['email', 'phone', 'nationalId'] as const) {
      expect(typeof created[field]).toBe('string');
      expect(created[field]).not.toBe(input[field]);
    }
    // …the store holds them encrypted…
    const stored = (await demo.stored(id))!;
    for (const field of ['email', 'phone', 'nationalId'] as const) expect(stored.personal).not.toContain(input[field]);
    expect(await demo.decrypt(stored.personal, { context: { record: id } })).toEqual({
      ok: true,
      value: personalOf(input),
    });
    // …and the back office reads exactly what the client sent.
    const plaintext = await admin(http().get(`/customers/${id}/plaintext`)).expect(200);
    expect(plaintext.body).toEqual({ ...input, id, createdAt: created.createdAt });
  }

  it('publishes a JWKS of public keys only, each named by its RFC 7638 thumbprint', async () => {
    const { keys } = await jwks();
    expect(keys).toHaveLength(1);
    const [jwk] = keys;
    expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256', use: 'enc', e: 'AQAB' });
    expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
  });

  it('accepts a customer encrypted with jose to the JWKS: 201, and the plaintext is what was sent', async () => {
    const [jwk] = (await jwks()).keys;
    const res = await http()
      .post('/customers/envelope')
      .send({ ciphertext: await jweFor(jwk, GRACE) })
      .expect(201);
    await expectStoredPlaintext(res.body as Json, GRACE);
  });

  it('accepts a JWE without cty (read as JSON on a body route) and with cty application/json', async () => {
    const [jwk] = (await jwks()).keys;
    for (const header of [{}, { cty: 'application/json' }]) {
      const res = await http()
        .post('/customers/envelope')
        .send({ ciphertext: await jweFor(jwk, GRACE, header) })
        .expect(201);
      await expectStoredPlaintext(res.body as Json, GRACE);
    }
  });

  it('refuses a tampered JWE with the standard 400, and stores nothing', async () => {
    const [jwk] = (await jwks()).keys;
    const before = ((await http().get('/customers').expect(200)).body as Json[]).length;
    const res = await http()
      .post('/customers/envelope')
      .send({ ciphertext: tamper(await jweFor(jwk, GRACE)) })
      .expect(400);
    expect(res.body).toEqual(undecryptable);
    expect(res.text).not.toContain(GRACE.email);
    expect(((await http().get('/customers').expect(200)).body as Json[]).length).toBe(before);
  });

  it('refuses a JWE to a key the server does not have, and one it cannot read, with the same 400', async () => {
    const { publicKey } = await generateKeyPair('RSA-OAEP-256', { extractable: true });
    const stranger = { ...(await exportJWK(publicKey)), alg: 'RSA-OAEP-256', kid: 'not-ours' };
    await http()
      .post('/customers/envelope')
      .send({ ciphertext: await jweFor(stranger, GRACE) })
      .expect(400)
      .expect((res) => {
        expect(res.body).toEqual(undecryptable);
      });
    await http()
      .post('/customers/envelope')
      .send({ ciphertext: 'eyJhbGciOiJub25lIn0.a.b.c.d' })
      .expect(400)
      .expect((res) => {
        expect(res.body).toEqual(undecryptable);
      });
  });

  it('validates the decrypted customer like any body', async () => {
    const [jwk] = (await jwks()).keys;
    const res = await http()
      .post('/customers/envelope')
      .send({ ciphertext: await jweFor(jwk, { ...GRACE, email: 'nope' }) })
      .expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['email must be an email'] });
  });

  it('after rotateKeyPair on the server: the JWKS has both keys and a JWE to the previous key is still accepted', async () => {
    const [previous] = (await jwks()).keys;
    const madeBefore = await jweFor(previous, GRACE);

    const rotated = await admin(http().post('/admin/key-pairs/rotate')).expect(200);
    const active = (rotated.body as { active: { kid: string; state: string } }).active;
    expect(active.state).toBe('active');
    expect(active.kid).not.toBe(previous.kid);

    const { keys } = await jwks();
    expect(keys.map((jwk) => jwk.kid)).toEqual([active.kid, previous.kid]);
    // A client still holding the old JWKS, before and after the rotation.
    for (const ciphertext of [madeBefore, await jweFor(previous, GRACE)]) {
      const res = await http().post('/customers/envelope').send({ ciphertext }).expect(201);
      await expectStoredPlaintext(res.body as Json, GRACE);
    }
    // And one that refetched.
    const res = await http()
      .post('/customers/envelope')
      .send({ ciphertext: await jweFor(keys[0], GRACE) })
      .expect(201);
    await expectStoredPlaintext(res.body as Json, GRACE);
  });
});
