import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import fc from 'fast-check';

import type { EncryptionTestApp } from '../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../test/support/encryption-test-app.js';
import { parseStreamHeader, streamHeaderSize } from './crypto/stream-header.js';
import { DecryptionError, EncryptionInputError, KeyNotFoundError } from './errors/encryption.errors.js';
import type { EncryptionEvent } from './interfaces/encryption-event.interface.js';
import type { StreamDecryptOptions, StreamEncryptOptions } from './interfaces/stream-options.interface.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

const TAG = 16;

/** Splits `bytes` into pieces of the given sizes (cycled), as a network or a file would deliver them. */
function pieces(bytes: Buffer, sizes: readonly number[] = [65_536]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = Math.max(1, sizes[k % sizes.length]);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function collect(source: Iterable<Buffer> | AsyncIterable<Buffer>, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(source, { objectMode: false }),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

async function expectGenericFailure(promise: Promise<unknown>): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error.constructor).toBe(DecryptionError);
  expect(error.message).toBe('Decryption failed');
}

/** A stream ciphertext cut into its header and its sealed chunks. */
function split(stream: Buffer): { header: Buffer; chunks: Buffer[] } {
  const headerSize = streamHeaderSize(stream[7]);
  const header = stream.subarray(0, headerSize);
  const sealed = parseStreamHeader(header)!.chunkSize + TAG;
  const chunks: Buffer[] = [];
  for (let at = headerSize; at < stream.length; at += sealed) chunks.push(stream.subarray(at, at + sealed));
  return { header, chunks };
}

function flip(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

describe('EncryptionService streams', () => {
  let app: EncryptionTestApp;
  const encrypt = (bytes: Buffer, options?: StreamEncryptOptions, sizes?: number[]) =>
    collect(pieces(bytes, sizes), app.encryption.createEncryptStream(options));
  const decrypt = (bytes: Buffer, options?: StreamDecryptOptions, sizes?: number[], target = app) =>
    collect(pieces(bytes, sizes), target.encryption.createDecryptStream(options));

  beforeAll(async () => {
    app = await apps.create();
  });

  describe('round trips', () => {
    const chunk = 1000;
    it.each([
      ['empty', 0],
      ['1 byte', 1],
      ['chunk - 1', chunk - 1],
      ['one chunk', chunk],
      ['chunk + 1', chunk + 1],
      ['several chunks, exact', 5 * chunk],
      ['several chunks and a bit', 5 * chunk + 7],
    ])('%s (%i bytes) with 1000-byte chunks, any input split', async (_name, size) => {
      const plaintext = randomBytes(size);
      for (const sizes of [[size || 1], [1], [7, 999, 1001, 3]]) {
        const ciphertext = await encrypt(plaintext, { chunkSize: chunk }, sizes);
        const chunks = Math.max(1, Math.ceil(size / chunk));
        expect(ciphertext.length).toBe(streamHeaderSize(app.keys.activeKey.id.length) + size + chunks * TAG);
        expect((await decrypt(ciphertext, {}, sizes)).equals(plaintext)).toBe(true);
      }
    });

    it('several MB with the default 1 MiB chunks, recorded in the header', async () => {
      const plaintext = randomBytes(5 * 1024 * 1024 + 12_345);
      const ciphertext = await encrypt(plaintext, undefined, [16_384, 100_000]);
      const { header, chunks } = split(ciphertext);
      expect(parseStreamHeader(header)!.chunkSize).toBe(1024 * 1024);
      expect(chunks.map((c) => c.length)).toEqual([...Array(5).fill(1024 * 1024 + TAG), 12_345 + TAG]);
      const decrypted = await decrypt(ciphertext, undefined, [65_536 + 16, 1_000_003]);
      expect(createHash('sha256').update(decrypted).digest('hex')).toBe(createHash('sha256').update(plaintext).digest('hex'));
    });

    it('pushes a sealed chunk in pieces of at most 128 KiB, its tag with its ciphertext', async () => {
      const piecesOf = async (size: number, options?: StreamEncryptOptions) => {
        const pushed: number[] = [];
        await pipeline(
          Readable.from(pieces(randomBytes(size), [16_384])),
          app.encryption.createEncryptStream(options),
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              pushed.push(chunk.length);
              callback();
            },
          }),
        );
        return pushed;
      };
      const headerSize = streamHeaderSize(app.keys.activeKey.id.length);
      // 2.5 MiB in 1 MiB chunks: 8 + 8 full pieces and a tag-sized rest for the two full chunks, then 4 for the last.
      const large = await piecesOf(2.5 * 1024 * 1024);
      expect(large).toEqual([headerSize, ...Array(8).fill(131_072), TAG, ...Array(8).fill(131_072), TAG, ...Array(4).fill(131_072), TAG]);
      // Small chunks: one piece per chunk, ciphertext and tag together.
      expect(await piecesOf(250, { chunkSize: 100 })).toEqual([headerSize, 100 + TAG, 100 + TAG, 50 + TAG]);
    });

    it('streams with the former default of 64 KiB chunks still decrypt (the size comes from the header)', async () => {
      const plaintext = randomBytes(3 * 65_536 + 100);
      const ciphertext = await encrypt(plaintext, { chunkSize: 65_536 });
      expect(split(ciphertext).chunks).toHaveLength(4);
      expect((await decrypt(ciphertext, undefined, [65_536])).equals(plaintext)).toBe(true);
    });

    it('any size, chunk size and input split (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 6000 }),
          fc.integer({ min: 1, max: 700 }),
          fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 5 }),
          fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 5 }),
          async (size, chunkSize, writeSizes, readSizes) => {
            const plaintext = randomBytes(size);
            const ciphertext = await encrypt(plaintext, { chunkSize }, writeSizes);
            expect(ciphertext.length).toBe(streamHeaderSize(app.keys.activeKey.id.length) + size + Math.max(1, Math.ceil(size / chunkSize)) * TAG);
            expect((await decrypt(ciphertext, {}, readSizes)).equals(plaintext)).toBe(true);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('binds a context, and decrypts with an explicit key or the ring', async () => {
      const plaintext = randomBytes(3000);
      const bound = await encrypt(plaintext, { chunkSize: 1000, context: { file: 'a.txt' } });
      expect((await decrypt(bound, { context: { file: 'a.txt' } })).equals(plaintext)).toBe(true);
      await expectGenericFailure(decrypt(bound));
      await expectGenericFailure(decrypt(bound, { context: { file: 'b.txt' } }));

      const key = randomBytes(32);
      const own = await encrypt(plaintext, { key });
      expect(parseStreamHeader(split(own).header)!.keyId).toMatch(/^x-[0-9a-f]{16}$/);
      expect((await decrypt(own, { key })).equals(plaintext)).toBe(true);
      await expect(decrypt(own)).rejects.toBeInstanceOf(KeyNotFoundError);
      // An explicit key that didn't make the stream falls back to the ring by key id.
      expect((await decrypt(await encrypt(plaintext), { key })).equals(plaintext)).toBe(true);
    });

    it('uses ChaCha20-Poly1305 when configured, and falls back to AES-256-GCM for AES-256-CBC-HMAC-SHA256', async () => {
      const store = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const chacha = await apps.create({ keyStore: store, masterKey, algorithm: 'ChaCha20-Poly1305' });
      const cbc = await apps.create({ keyStore: store, masterKey, algorithm: 'AES-256-CBC-HMAC-SHA256' });
      const plaintext = randomBytes(2500);
      const a = await collect(pieces(plaintext), chacha.encryption.createEncryptStream());
      const b = await collect(pieces(plaintext), cbc.encryption.createEncryptStream());
      expect(parseStreamHeader(split(a).header)!.cipher.name).toBe('ChaCha20-Poly1305');
      expect(parseStreamHeader(split(b).header)!.cipher.name).toBe('AES-256-GCM');
      expect((await decrypt(a, {}, undefined, cbc)).equals(plaintext)).toBe(true);
      expect((await decrypt(b, {}, undefined, chacha)).equals(plaintext)).toBe(true);
    });

    it('gives every stream its own salt and nonce prefix', async () => {
      const plaintext = Buffer.from('same plaintext');
      const [a, b] = [await encrypt(plaintext), await encrypt(plaintext)];
      const [ha, hb] = [parseStreamHeader(split(a).header)!, parseStreamHeader(split(b).header)!];
      expect(ha.salt.equals(hb.salt)).toBe(false);
      expect(ha.noncePrefix.equals(hb.noncePrefix)).toBe(false);
      expect(split(a).chunks[0].equals(split(b).chunks[0])).toBe(false);
    });
  });

  describe('tampering', () => {
    const chunkSize = 100;
    const plaintext = randomBytes(4 * chunkSize + 50);
    let stream: Buffer;
    let header: Buffer;
    let chunks: Buffer[];

    beforeAll(async () => {
      stream = await encrypt(plaintext, { chunkSize });
      ({ header, chunks } = split(stream));
      expect(chunks.map((c) => c.length)).toEqual([116, 116, 116, 116, 66]);
    });

    const join = (...parts: Buffer[]) => Buffer.concat(parts);

    it('the untouched stream decrypts', async () => {
      expect((await decrypt(stream)).equals(plaintext)).toBe(true);
    });

    it.each([
      ['reordered chunks', () => join(header, chunks[0], chunks[2], chunks[1], chunks[3], chunks[4])],
      ['a duplicated chunk', () => join(header, chunks[0], chunks[1], chunks[1], chunks[2], chunks[3], chunks[4])],
      ['a dropped chunk', () => join(header, chunks[0], chunks[1], chunks[3], chunks[4])],
      ['the last chunk dropped (truncated at a chunk boundary)', () => join(header, ...chunks.slice(0, 4))],
      ['truncated inside a chunk', () => stream.subarray(0, stream.length - 30)],
      ['truncated inside the last tag', () => stream.subarray(0, stream.length - 1)],
      ['only the header', () => header],
      ['part of the header', () => header.subarray(0, 20)],
      ['nothing at all', () => Buffer.alloc(0)],
      ['a chunk appended after the last', () => join(stream, chunks[1])],
      ['one byte appended', () => join(stream, Buffer.from([0]))],
      ['the last chunk moved to the middle', () => join(header, chunks[0], chunks[4], chunks[1], chunks[2], chunks[3])],
      ['a native envelope instead of a stream', () => Buffer.from([1, 1, 0, 3, 0x6b])],
    ])('%s: DecryptionError', async (_name, tampered) => {
      await expectGenericFailure(decrypt(tampered()));
    });

    it('a bit flipped anywhere in any chunk (ciphertext or tag): DecryptionError', async () => {
      const headerSize = header.length;
      for (let index = headerSize; index < stream.length; index += 13) await expectGenericFailure(decrypt(flip(stream, index)));
      await expectGenericFailure(decrypt(flip(stream, stream.length - 1)));
    });

    it('the header is authenticated: a bit flipped in any of its bytes fails', async () => {
      const keyIdEnd = 8 + header[7];
      for (let index = 0; index < header.length; index++) {
        const error = await rejectionOf(decrypt(flip(stream, index)));
        expect(error).toBeInstanceOf(DecryptionError);
        // Changing the key id (or its length) names another key: none has that id.
        if (index >= 8 && index < keyIdEnd) expect(error).toBeInstanceOf(KeyNotFoundError);
        else if (index === 7) expect([DecryptionError, KeyNotFoundError]).toContain(error.constructor);
        else {
          expect(error.constructor).toBe(DecryptionError);
          expect(error.message).toBe('Decryption failed');
        }
      }
    });

    it('a chunk from another stream of the same key: DecryptionError', async () => {
      const other = split(await encrypt(randomBytes(plaintext.length), { chunkSize }));
      await expectGenericFailure(decrypt(join(header, chunks[0], other.chunks[1], chunks[2], chunks[3], chunks[4])));
      await expectGenericFailure(decrypt(join(other.header, ...chunks)));
    });

    it('releases only authenticated chunks: a truncated stream yields whole verified chunks, then fails', async () => {
      const released: Buffer[] = [];
      const error = await rejectionOf(
        pipeline(
          Readable.from(pieces(join(header, ...chunks.slice(0, 4)))),
          app.encryption.createDecryptStream(),
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              released.push(chunk);
              callback();
            },
          }),
        ),
      );
      expect(error).toBeInstanceOf(DecryptionError);
      const out = Buffer.concat(released);
      expect(out.length % chunkSize).toBe(0);
      expect(out.equals(plaintext.subarray(0, out.length))).toBe(true);
    });
  });

  it('a stream of a key this ring has never had: KeyNotFoundError with its id', async () => {
    const elsewhere = await apps.create();
    const ciphertext = await collect(pieces(randomBytes(10)), elsewhere.encryption.createEncryptStream());
    const error = await rejectionOf(decrypt(ciphertext));
    expect(error).toBeInstanceOf(KeyNotFoundError);
    expect((error as KeyNotFoundError).keyId).toBe(elsewhere.keys.activeKey.id);
  });

  it('decrypts streams of previous keys after rotation', async () => {
    const before = await encrypt(Buffer.from('before rotation'));
    await app.keys.rotate();
    expect((await decrypt(before)).toString()).toBe('before rotation');
  });

  it('refuses bad options at creation', () => {
    for (const chunkSize of [0, -1, 1.5, 16 * 1024 * 1024 + 1, Number.NaN]) {
      expect(() => app.encryption.createEncryptStream({ chunkSize })).toThrow(EncryptionInputError);
    }
    expect(() => app.encryption.createEncryptStream({ key: Buffer.alloc(4) })).toThrow(EncryptionInputError);
    expect(() => app.encryption.createEncryptStream({ context: 3 as never })).toThrow(EncryptionInputError);
    expect(() => app.encryption.createDecryptStream({ highWaterMark: 0 })).toThrow(EncryptionInputError);
  });

  it('reports one operation event per stream, with its sizes', async () => {
    const events: EncryptionEvent[] = [];
    const stop = app.events.subscribe((event) => events.push(event));
    try {
      const ciphertext = await encrypt(randomBytes(2500), { chunkSize: 1000 });
      await decrypt(ciphertext);
      await rejectionOf(decrypt(ciphertext.subarray(0, ciphertext.length - 1)));
    } finally {
      stop();
    }
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ type: 'operation', operation: 'encrypt', result: 'success', algorithm: 'AES-256-GCM', plaintextBytes: 2500 });
    expect(events[1]).toMatchObject({ type: 'operation', operation: 'decrypt', result: 'success', plaintextBytes: 2500 });
    expect(events[2]).toMatchObject({ type: 'operation', operation: 'decrypt', result: 'failure', errorCode: 'DECRYPTION_FAILED' });
  });

  it('applies backpressure: an unread stream stops accepting writes instead of buffering everything', async () => {
    const stream = app.encryption.createEncryptStream({ chunkSize: 4096, highWaterMark: 16_384 });
    const piece = randomBytes(4096);
    let written = 0;
    while (stream.write(piece)) {
      written += piece.length;
      if (written > 10 * 1024 * 1024) break;
    }
    expect(written).toBeLessThan(256 * 1024);
    stream.destroy();
  });
});
