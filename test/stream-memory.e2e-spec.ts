import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { transpileLibraryModule } from './support/transpile-library.js';

/**
 * A 256 MiB stream through `EncryptStream` and then `DecryptStream` (the library's streaming core),
 * in a plain Node child process so nothing else shares its memory: the resident set and the
 * ArrayBuffer memory may grow by a few chunks and buffers, never by anything near the stream's size.
 */
const TOTAL = 256 * 1024 * 1024;

const CHILD = `
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { AES_256_GCM } from './crypto/aead.js';
import { serializeStreamHeader } from './crypto/stream-header.js';
import { DecryptStream, EncryptStream } from './crypto/stream-transforms.js';

const total = ${TOTAL};
const piece = randomBytes(64 * 1024);
const key = randomBytes(32);
const fields = { cipher: AES_256_GCM, chunkSize: Number(process.argv[2]), keyId: 'k1-memory', commitment: randomBytes(32), salt: randomBytes(32), noncePrefix: randomBytes(7) };
const header = { ...fields, bytes: serializeStreamHeader(fields) };

globalThis.gc();
const base = process.memoryUsage();
let peakRss = base.rss;
let peakArrayBuffers = base.arrayBuffers;
const sample = () => {
  const now = process.memoryUsage();
  peakRss = Math.max(peakRss, now.rss);
  peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
};
const timer = setInterval(sample, 5);

let produced = 0;
const source = new Readable({
  read() {
    if (produced >= total) return this.push(null);
    produced += piece.length;
    this.push(piece);
  },
});
const sent = createHash('sha256');
for (let i = 0; i < total / piece.length; i++) sent.update(piece);
const received = createHash('sha256');
let bytes = 0;
let writes = 0;
await pipeline(
  source,
  new EncryptStream({ cipher: AES_256_GCM, key: Buffer.from(key), header, context: Buffer.alloc(0) }),
  new DecryptStream({ resolveKey: () => Buffer.from(key), context: Buffer.alloc(0) }),
  new Writable({
    write(chunk, _encoding, callback) {
      bytes += chunk.length;
      received.update(chunk);
      if (++writes % 64 === 0) sample();
      callback();
    },
  }),
);
clearInterval(timer);
sample();
console.log(JSON.stringify({
  bytes,
  intact: sent.digest('hex') === received.digest('hex'),
  rssGrowth: peakRss - base.rss,
  arrayBuffersGrowth: peakArrayBuffers - base.arrayBuffers,
}));
`;

describe('streaming memory', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stream-memory-'));
    transpileLibraryModule('crypto/stream-transforms.ts', dir);
    writeFileSync(join(dir, 'child.mjs'), CHILD);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // 1 MiB is the default chunk size of createEncryptStream(), 64 KiB the former one.
  it.each([65_536, 1024 * 1024])(
    'encrypts and decrypts 256 MiB with bounded memory (%i-byte chunks)',
    (chunkSize) => {
      const output = execFileSync(process.execPath, ['--expose-gc', join(dir, 'child.mjs'), String(chunkSize)], {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
        timeout: 240_000,
      });
      const result = JSON.parse(output.trim().split('\n').at(-1)!) as {
        bytes: number;
        intact: boolean;
        rssGrowth: number;
        arrayBuffersGrowth: number;
      };
      expect(result.bytes).toBe(TOTAL);
      expect(result.intact).toBe(true);
      // A stream held in memory would need 256 MiB (twice over, encrypted and decrypted). What grows here
      // is a few chunks in flight plus garbage V8 hasn't collected yet: it collects once external
      // (Buffer) memory grows by a few tens of MiB, so ~30-45 MiB is normal; the bounds leave room for that.
      expect(result.arrayBuffersGrowth).toBeLessThan(64 * 1024 * 1024);
      expect(result.rssGrowth).toBeLessThan(96 * 1024 * 1024);
    },
    300_000,
  );
});
