import { execFileSync } from 'node:child_process';
import { renameSync, rmSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import request from 'supertest';

import { DEV_ADMIN_TOKEN } from '../apps/demo/src/config/demo.config.js';
import { launchChromium } from './support/chromium.js';
import type { DemoBuild, DemoProcess } from './support/demo-app.js';
import { buildDemoForNode, startDemoProcess } from './support/demo-app.js';

/**
 * The browser demo (apps/demo/web) in a real Chromium, on Express and Fastify: the page encrypts the
 * form to the server's JWKS as compact JWE, the server decrypts, validates and stores it
 * field-encrypted; the page survives key pair rotation and shows tampering as a clear error. The demo
 * runs in a child process (see test/support/demo-app.ts); the page is bundled by scripts/build-web.mjs.
 */

const ADAPTERS = ['express', 'fastify'] as const;
const AUTH = { authorization: `Bearer ${DEV_ADMIN_TOKEN}` };
/** The README's picture is refreshed only on request (UPDATE_SCREENSHOT=1), so a test run leaves the tree clean. */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOT === '1'
    ? resolve('docs/demo-page.png')
    : join(tmpdir(), `demo-page-${process.pid}.png`);
const COMPACT_JWE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){4}$/;
/** The text form of the library's own envelope (docs/FORMAT.md). */
const NATIVE_CIPHERTEXT = /^A[A-Za-z0-9_-]+$/;
const SENSITIVE = ['email', 'phone', 'nationalId'] as const;

interface CustomerInput {
  name: string;
  email: string;
  phone?: string;
  nationalId: string;
}

type Json = Record<string, any>;

const ADA: CustomerInput = {
  name: 'Ada Lovelace',
  email: 'ada.browser@example.com',
  phone: '+44 20 7946 0958',
  nationalId: 'QQ123456C',
};
const GRACE: CustomerInput = { name: 'Grace Hopper', email: 'grace.browser@example.com', nationalId: '078-05-1120' };
const KATHERINE: CustomerInput = {
  name: 'Katherine Johnson',
  email: 'katherine@example.org',
  phone: '+1 757 555 0100',
  nationalId: 'KJ-1918-0826',
};
const ALAN: CustomerInput = {
  name: 'Alan Turing',
  email: 'alan@example.co.uk',
  phone: '+44 161 555 0199',
  nationalId: 'AT-1912-0623',
};

let build: DemoBuild;
let webDir: string;
let demo: DemoProcess;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  build = buildDemoForNode();
  // Where the demo's WebController looks: apps/demo/web beside apps/demo/src, as in dist/.
  webDir = join(resolve(dirname(build.childPath), '../..'), 'apps/demo/web');
  execFileSync(process.execPath, ['scripts/build-web.mjs', '--outdir', webDir], { stdio: 'pipe' });
  [demo, browser] = await Promise.all([startDemoProcess(build), launchChromium()]);
}, 120_000);

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  build?.remove();
});

interface Session {
  page: Page;
  /** Every request the page made, in order. */
  requests: Request[];
}

/** A fresh browser context (empty cache) on the page, once it has fetched the JWKS. */
async function open(base: string, path = '/'): Promise<Session> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  const requests: Request[] = [];
  page.on('request', (sent) => requests.push(sent));
  await page.goto(base + path);
  await page.waitForSelector('body[data-state="idle"]');
  return { page, requests };
}

async function fill(page: Page, input: CustomerInput): Promise<void> {
  for (const field of ['name', 'email', 'phone', 'nationalId'] as const)
    await page.fill(`input[name="${field}"]`, input[field] ?? '');
}

async function submit(page: Page, outcome: 'done' | 'error'): Promise<void> {
  await page.click('#submit');
  await page.waitForSelector(`body[data-state="${outcome}"]`);
}

const posts = (session: Session) => session.requests.filter((sent) => sent.method() === 'POST');
const jwksFetches = (session: Session) =>
  session.requests.filter((sent) => new URL(sent.url()).pathname === '/.well-known/jwks.json');

/** The JWE a captured POST carried, after checking the body is exactly `{ ciphertext: <compact JWE> }`. */
function jweOf(post: Request): string {
  const body = JSON.parse(post.postData() ?? 'null') as Json;
  expect(Object.keys(body)).toEqual(['ciphertext']);
  expect(body.ciphertext).toMatch(COMPACT_JWE);
  return body.ciphertext as string;
}

const protectedHeader = (jwe: string) =>
  JSON.parse(Buffer.from(jwe.split('.')[0], 'base64url').toString('utf8')) as Json;

async function statusOf(post: Request): Promise<number> {
  const response = await post.response();
  if (!response) throw new Error(`no response to ${post.url()}`);
  return response.status();
}

const panel = async (page: Page, id: string) => JSON.parse((await page.textContent(`#${id}`)) ?? 'null') as Json;

async function plaintextOf(base: string, id: string): Promise<Json> {
  return (await request(base).get(`/customers/${id}/plaintext`).set(AUTH).expect(200)).body as Json;
}

describe.each(ADAPTERS)('browser demo on %s', (adapter) => {
  let base: string;

  beforeAll(async () => {
    // Memory store; one previous key pair kept, so a second rotation retires the first pair.
    base = await demo.boot({ DEMO_ADAPTER: adapter, KEY_STORE: 'memory', KEY_RETENTION_MAX_PREVIOUS_KEYS: '1' });
  }, 60_000);

  it('serves the page, its bundle and stylesheet with their content types, and a JWKS of public keys only', async () => {
    const page = await request(base).get('/').expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.text).toContain('<script type="module" src="/assets/main.js"></script>');

    const script = await request(base).get('/assets/main.js').expect(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).toContain('A256GCM');
    expect(script.text).not.toMatch(/https?:\/\//); // nothing to fetch from elsewhere
    const style = await request(base).get('/assets/style.css').expect(200);
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');

    const jwks = (await request(base).get('/.well-known/jwks.json').expect(200)).body as { keys: Json[] };
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of jwks.keys) {
      expect(Object.keys(key).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256', use: 'enc' });
    }
  });

  it('says to run the build when the page bundle is missing', async () => {
    const hidden = `${webDir}.hidden`;
    renameSync(webDir, hidden);
    try {
      for (const path of ['/', '/assets/main.js', '/assets/style.css']) {
        const response = await request(base).get(path).expect(404);
        expect(response.body.message).toMatch(/^The demo page is not built \(.+ missing\): run `npm run build`/);
      }
    } finally {
      renameSync(hidden, webDir);
    }
    await request(base).get('/').expect(200);
  });

  it('encrypts the form in the browser; the server decrypts, validates, stores it field-encrypted and reads it back', async () => {
    const session = await open(base);
    const { page } = session;
    const activeKid = (await request(base).get('/.well-known/jwks.json').expect(200)).body.keys[0].kid as string;
    expect(await page.getAttribute('#key-status', 'data-kid')).toBe(activeKid);

    await fill(page, ADA);
    await submit(page, 'done');
    const id = (await page.getAttribute('#status', 'data-customer-id'))!;

    // What crossed the network: one JWE made in the browser, to the active key, with no plaintext in it.
    const [post] = posts(session);
    expect(posts(session)).toHaveLength(1);
    expect(new URL(post.url()).pathname).toBe('/customers/envelope');
    expect(post.headers()['content-type']).toBe('application/json');
    const jwe = jweOf(post);
    expect(protectedHeader(jwe)).toEqual({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: activeKid, cty: 'json' });
    for (const value of Object.values(ADA)) expect(post.postData()).not.toContain(value);
    expect(await statusOf(post)).toBe(201);

    // The record as typed, read back through the API.
    expect(await plaintextOf(base, id)).toEqual({ id, ...ADA, createdAt: expect.any(String) });

    // What the page shows: the JWE it sent, the answer and the stored form, personal fields encrypted.
    expect(await page.textContent('#sent')).toBe(post.postData());
    const answer = await panel(page, 'answer');
    const stored = await demo.stored(id);
    expect(await panel(page, 'stored')).toEqual(stored);
    const readBack = await panel(page, 'read');
    for (const shown of [answer, readBack]) expect(shown).toMatchObject({ id, name: ADA.name });
    for (const field of SENSITIVE) {
      for (const shown of [answer, readBack]) {
        expect(shown[field]).toMatch(NATIVE_CIPHERTEXT);
        expect(shown[field]).not.toContain(ADA[field]!);
      }
      expect(JSON.stringify(stored)).not.toContain(ADA[field]!);
    }
    expect(stored!.personal).toMatch(NATIVE_CIPHERTEXT);
    expect(answer.email).not.toBe(readBack.email); // fresh ciphertext each time

    // Every request the page made went to the demo, and only these.
    const origin = new URL(base).origin;
    expect(session.requests.every((sent) => new URL(sent.url()).origin === origin)).toBe(true);
    expect(session.requests.map((sent) => `${sent.method()} ${new URL(sent.url()).pathname}`).sort()).toEqual(
      [
        'GET /',
        'GET /assets/main.js',
        'GET /assets/style.css',
        'GET /.well-known/jwks.json',
        'POST /customers/envelope',
        `GET /customers/${id}/stored`,
        `GET /customers/${id}`,
      ].sort(),
    );

    // The picture in the README.
    if (adapter === 'express') {
      const taken = Date.now();
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(statSync(SCREENSHOT).mtimeMs).toBeGreaterThanOrEqual(taken - 1000);
      if (process.env.UPDATE_SCREENSHOT !== '1') rmSync(SCREENSHOT);
    }
  }, 60_000);

  it('shows the server refusing a tampered JWE, and stores nothing', async () => {
    const before = (await request(base).get('/customers').expect(200)).body.length as number;
    const session = await open(base, '/?tamper=1');
    const { page } = session;
    expect(await page.isChecked('#tamper')).toBe(true);

    await fill(page, GRACE);
    await submit(page, 'error');

    expect(await page.isVisible('#error')).toBe(true);
    expect(await page.textContent('#error')).toBe(
      'The server refused the submission (400 DECRYPTION_FAILED): Encrypted body could not be decrypted. ' +
        "The JWE did not decrypt with the server's keys: it was altered on the way, or made for a key the server no longer has.",
    );
    expect(await page.textContent('#status')).toBe('Not saved.');
    // The key is still published, so the page doesn't retry: one POST, and a JWKS check after it.
    expect(posts(session)).toHaveLength(1);
    expect(await statusOf(posts(session)[0])).toBe(400);
    expect(jwksFetches(session)).toHaveLength(2);
    for (const value of Object.values(GRACE)) expect(posts(session)[0].postData()).not.toContain(value);
    expect(await panel(page, 'answer')).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'Encrypted body could not be decrypted',
      field: 'body',
      reason: 'DECRYPTION_FAILED',
    });
    expect((await request(base).get('/customers').expect(200)).body).toHaveLength(before);
  }, 60_000);

  it("shows the server's validation of the decrypted record", async () => {
    const { page } = await open(base);
    await fill(page, { ...KATHERINE, email: 'not an e-mail' });
    await submit(page, 'error');
    expect(await page.textContent('#error')).toBe(
      'The server refused the record (400, validation): email must be an email',
    );
  }, 60_000);

  it('accepts a JWE made to the previous key pair after the server rotated while the page was open', async () => {
    const session = await open(base);
    const { page } = session;
    const previousKid = (await page.getAttribute('#key-status', 'data-kid'))!;

    await request(base).post('/admin/key-pairs/rotate').expect(401);
    const rotated = (await request(base).post('/admin/key-pairs/rotate').set(AUTH).expect(200)).body.active as Json;
    expect(rotated).toMatchObject({ alg: 'RSA-OAEP-256', state: 'active' });
    expect(rotated.kid).not.toBe(previousKid);
    const jwks = (await request(base).get('/.well-known/jwks.json').expect(200)).body as { keys: Json[] };
    expect(jwks.keys.map((key) => key.kid)).toEqual([rotated.kid, previousKid]);

    await fill(page, KATHERINE);
    await submit(page, 'done');

    expect(posts(session)).toHaveLength(1);
    expect(protectedHeader(jweOf(posts(session)[0])).kid).toBe(previousKid);
    expect(await statusOf(posts(session)[0])).toBe(201);
    expect(jwksFetches(session)).toHaveLength(1);
    const id = (await page.getAttribute('#status', 'data-customer-id'))!;
    expect(await plaintextOf(base, id)).toEqual({ id, ...KATHERINE, createdAt: expect.any(String) });
  }, 60_000);

  it('refetches the JWKS and re-encrypts once when the key pair it used was retired', async () => {
    const session = await open(base);
    const { page } = session;
    const retiredKid = (await page.getAttribute('#key-status', 'data-kid'))!;

    // Two rotations with one previous pair kept: the page's key pair is retired.
    await request(base).post('/admin/key-pairs/rotate').set(AUTH).expect(200);
    const active = (await request(base).post('/admin/key-pairs/rotate').set(AUTH).expect(200)).body.active
      .kid as string;
    const pairs = (await request(base).get('/admin/key-pairs').set(AUTH).expect(200)).body as Json[];
    expect(pairs.find((pair) => pair.kid === retiredKid)?.state).toBe('retired');

    await fill(page, ALAN);
    await submit(page, 'done');

    const [first, second] = posts(session);
    expect(posts(session)).toHaveLength(2);
    expect(protectedHeader(jweOf(first)).kid).toBe(retiredKid);
    expect(await statusOf(first)).toBe(400);
    expect(protectedHeader(jweOf(second)).kid).toBe(active);
    expect(await statusOf(second)).toBe(201);
    for (const post of [first, second])
      for (const value of Object.values(ALAN)) expect(post.postData()).not.toContain(value);
    expect(jwksFetches(session)).toHaveLength(2);
    expect(await page.getAttribute('#key-status', 'data-kid')).toBe(active);
    expect(await page.textContent('#log')).toContain(
      `Key ${retiredKid.slice(0, 10)}… is no longer published (the server rotated it away): re-encrypting to ${active.slice(0, 10)}…, once.`,
    );
    expect(await page.isHidden('#error')).toBe(true);
    const id = (await page.getAttribute('#status', 'data-customer-id'))!;
    expect(await plaintextOf(base, id)).toEqual({ id, ...ALAN, createdAt: expect.any(String) });
  }, 60_000);
});

/**
 * A TCP relay in front of the demo, so the page keeps its origin while the demo behind it is replaced
 * (a restart on another port). Each connection is tied to one upstream: when that one goes, so does it.
 */
async function startRelay(): Promise<{ url: string; target(url: string): void; close(): Promise<void> }> {
  let upstream: URL | undefined;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const remote = connect(Number(upstream!.port), upstream!.hostname);
    for (const socket of [client, remote]) {
      open.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        open.delete(socket);
        client.destroy();
        remote.destroy();
      });
    }
    client.pipe(remote).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    target: (url) => (upstream = new URL(url)),
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('browser demo after the server restarted with a fresh key store', () => {
  it('refetches the JWKS and re-encrypts once when the server has never heard of its key', async () => {
    const relay = await startRelay();
    try {
      relay.target(await demo.boot({ DEMO_ADAPTER: 'express', KEY_STORE: 'memory' }));
      const session = await open(relay.url);
      const { page } = session;
      const lostKid = (await page.getAttribute('#key-status', 'data-kid'))!;

      // A new process with an empty in-memory store: new key pairs, and no trace of the old ones.
      relay.target(await demo.boot({ DEMO_ADAPTER: 'express', KEY_STORE: 'memory' }));
      const freshKid = (await request(relay.url).get('/.well-known/jwks.json').expect(200)).body.keys[0].kid as string;
      expect(freshKid).not.toBe(lostKid);

      await fill(page, GRACE);
      await submit(page, 'done');

      const [first, second] = posts(session);
      expect(posts(session)).toHaveLength(2);
      expect(protectedHeader(jweOf(first)).kid).toBe(lostKid);
      expect(await statusOf(first)).toBe(400);
      expect(protectedHeader(jweOf(second)).kid).toBe(freshKid);
      expect(await statusOf(second)).toBe(201);
      expect(jwksFetches(session)).toHaveLength(2);
      expect(session.requests.every((sent) => new URL(sent.url()).origin === relay.url)).toBe(true);
      const id = (await page.getAttribute('#status', 'data-customer-id'))!;
      expect(await plaintextOf(relay.url, id)).toEqual({ id, ...GRACE, createdAt: expect.any(String) });
    } finally {
      await Promise.all(contexts.splice(0).map((context) => context.close()));
      await relay.close();
    }
  }, 90_000);
});
