import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import request from 'supertest';

import type { DemoBuild, DemoProcess } from './support/demo-app.js';
import { buildDemoForNode, startDemoProcess } from './support/demo-app.js';

/**
 * The demo's encrypted file storage, `POST /files` and `GET /files/:id`, on Express and Fastify. The
 * demo runs in a child Node process (see test/support/demo-app.child.ts).
 */

const ADAPTERS = ['express', 'fastify'] as const;
const PROCESS_TIMEOUT_MS = 120_000;
const HEADER_MIN = 79;
/** createEncryptStream()'s default chunk size, which the demo uses. */
const CHUNK = 1024 * 1024;
const TAG = 16;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Uploads with chunked transfer encoding from a stream, as a client streaming a large file would. */
function streamUpload(url: string, source: Readable): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/files`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    source.pipe(req);
  });
}

/** A download read to its end, or how it broke off. */
function download(url: string): Promise<{ status: number; body: Buffer; complete: boolean; contentType?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      const parts: Buffer[] = [];
      let complete = false;
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => (complete = true));
      res.on('close', () =>
        resolve({ status: res.statusCode!, body: Buffer.concat(parts), complete: complete && res.complete, contentType: res.headers['content-type'] }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

let build: DemoBuild;
let root: string;

beforeAll(() => {
  build = buildDemoForNode();
  root = mkdtempSync(join(tmpdir(), 'files-e2e-'));
}, PROCESS_TIMEOUT_MS);
afterAll(() => {
  build?.remove();
  rmSync(root, { recursive: true, force: true });
});

describe.each(ADAPTERS)('demo encrypted files on %s', (adapter) => {
  let demo: DemoProcess;
  let url: string;
  let filesDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    demo = await startDemoProcess(build);
    const dir = join(root, adapter);
    filesDir = join(dir, 'files');
    env = {
      DEMO_ADAPTER: adapter,
      KEY_STORE: 'file',
      KEY_STORE_PATH: join(dir, 'keyring.json'),
      DEV_MASTER_KEY_PATH: join(dir, 'dev-master-key'),
      FILES_DIR: filesDir,
    };
    url = await demo.boot(env);
  }, PROCESS_TIMEOUT_MS);
  afterAll(async () => {
    await demo?.stop();
  });

  const storedPath = (id: string) => join(filesDir, `${id}.enc`);

  it('stores an upload encrypted in the streaming format and streams it back decrypted', async () => {
    const content = randomBytes(3 * CHUNK + 1234);
    const upload = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(content).expect(201);
    expect(upload.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), bytes: content.length, storedBytes: expect.any(Number) });
    const id = upload.body.id as string;

    const stored = readFileSync(storedPath(id));
    expect(stored[0]).toBe(0x02);
    expect(stored.length).toBe(upload.body.storedBytes);
    expect(stored.length).toBeGreaterThan(HEADER_MIN + content.length + 4 * TAG);
    expect(stored.includes(content.subarray(1000, 1032))).toBe(false);
    expect(readdirSync(filesDir).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect((statSync(storedPath(id)).mode & 0o777).toString(8)).toBe('600');

    const result = await download(`${url}/files/${id}`);
    expect(result.status).toBe(200);
    expect(result.contentType).toBe('application/octet-stream');
    expect(result.complete).toBe(true);
    expect(sha256(result.body)).toBe(sha256(content));
  });

  it('takes a streamed (chunked) upload of 24 MiB and returns it intact', async () => {
    const piece = randomBytes(CHUNK + 7);
    const count = Math.ceil((24 * 1024 * 1024) / piece.length);
    const expected = createHash('sha256');
    for (let i = 0; i < count; i++) expected.update(piece);
    const upload = await streamUpload(url, Readable.from((function* () { for (let i = 0; i < count; i++) yield piece; })()));
    expect(upload.status).toBe(201);
    expect(upload.body.bytes).toBe(piece.length * count);
    const result = await download(`${url}/files/${upload.body.id as string}`);
    expect(result.complete).toBe(true);
    expect(result.body.length).toBe(piece.length * count);
    expect(sha256(result.body)).toBe(expected.digest('hex'));
  }, 60_000);

  it('stores and returns an empty file', async () => {
    const upload = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(Buffer.alloc(0)).expect(201);
    expect(upload.body.bytes).toBe(0);
    const result = await download(`${url}/files/${upload.body.id as string}`);
    expect(result).toMatchObject({ status: 200, complete: true });
    expect(result.body.length).toBe(0);
  });

  it('refuses other content types, unknown ids and malformed ids', async () => {
    await request(url).post('/files').send({ not: 'a file' }).expect(415);
    await request(url).post('/files').set('Content-Type', 'text/plain').send('text').expect(415);
    await request(url).get('/files/00000000-0000-4000-8000-000000000000').expect(404);
    await request(url).get('/files/not-a-uuid').expect(400);
  });

  it('a stored file tampered with in its first chunk is refused with 500 before any byte is sent', async () => {
    const content = randomBytes(2 * CHUNK + 10);
    const { body } = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(content).expect(201);
    const path = storedPath(body.id as string);
    const stored = readFileSync(path);
    stored[stored.length - 2 * (CHUNK + TAG) - 10] ^= 0x01; // inside chunk 0's ciphertext
    writeFileSync(path, stored);
    const result = await download(`${url}/files/${body.id as string}`);
    expect(result.status).toBe(500);
    expect(JSON.parse(result.body.toString('utf8'))).toMatchObject({ statusCode: 500, message: 'The stored file failed authentication' });
  });

  it('a stored file tampered with or truncated later is cut off: the client never sees a complete download', async () => {
    const content = randomBytes(4 * CHUNK);
    for (const damage of ['flip', 'truncate'] as const) {
      const { body } = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(content).expect(201);
      const path = storedPath(body.id as string);
      const stored = readFileSync(path);
      if (damage === 'flip') stored[stored.length - 20] ^= 0x01; // last chunk
      writeFileSync(path, damage === 'truncate' ? stored.subarray(0, stored.length - (CHUNK + TAG)) : stored);
      const result = await download(`${url}/files/${body.id as string}`);
      expect(result.complete).toBe(false);
      expect(result.body.length).toBeLessThan(content.length);
      // What did arrive was authentic: whole chunks of the original.
      expect(result.body.equals(content.subarray(0, result.body.length))).toBe(true);
    }
  });

  it('a stored file moved to another id does not decrypt there (each file is bound to its id)', async () => {
    const a = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(Buffer.from('file a')).expect(201);
    const b = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(Buffer.from('file b')).expect(201);
    writeFileSync(storedPath(b.body.id as string), readFileSync(storedPath(a.body.id as string)));
    expect((await download(`${url}/files/${b.body.id as string}`)).status).toBe(500);
    expect((await download(`${url}/files/${a.body.id as string}`)).body.toString()).toBe('file a');
  });

  it('files stay readable after a restart (keys from the file key store)', async () => {
    const content = randomBytes(100_000);
    const { body } = await request(url).post('/files').set('Content-Type', 'application/octet-stream').send(content).expect(201);
    url = await demo.boot(env);
    const result = await download(`${url}/files/${body.id as string}`);
    expect(result.complete).toBe(true);
    expect(result.body.equals(content)).toBe(true);
  });
});
