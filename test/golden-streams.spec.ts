import 'reflect-metadata';

import { createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Test } from '@nestjs/testing';
import type { StoredKeyRing } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService, InMemoryKeyStore, KeyNotFoundError } from 'nestjs-encryption';

interface GoldenStream {
  name: string;
  algorithm: 'AES-256-GCM' | 'ChaCha20-Poly1305';
  chunkSize: number;
  context?: Record<string, string>;
  explicitKey: boolean;
  plaintext?: string;
  plaintextText?: { size: number };
  plaintextSha256?: string;
  ciphertext: string;
}

/** Made by scripts/generate-golden-streams.mjs; every future version must decrypt them unchanged. */
const golden = JSON.parse(readFileSync(resolve(process.cwd(), 'test/golden/streams.json'), 'utf8')) as {
  masterKey: string;
  explicitKey: string;
  keyRing: StoredKeyRing;
  cases: GoldenStream[];
};
const explicitKey = Buffer.from(golden.explicitKey, 'base64');

function text(size: number): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789\n';
  return Buffer.from(line.repeat(Math.ceil(size / line.length) + 1).slice(0, size), 'utf8');
}

function expectedPlaintext(c: GoldenStream): Buffer {
  if (c.plaintext !== undefined) return Buffer.from(c.plaintext, 'hex');
  const bytes = text(c.plaintextText!.size);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(c.plaintextSha256);
  return bytes;
}

async function decryptStream(service: EncryptionService, ciphertext: Buffer, options: object): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let at = 0; at < ciphertext.length; at += 1000) pieces.push(ciphertext.subarray(at, at + 1000));
  await pipeline(
    Readable.from(pieces),
    service.createDecryptStream(options),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

/**
 * docs/FORMAT.md "Streams", implemented again from the text with nothing but node:crypto: the header
 * layout, the subkey, the nonce of each chunk and the AAD. Agreeing with the library on the golden
 * streams shows the document describes what the code does.
 */
function decryptBySpec(stream: Buffer, key: Buffer): Buffer {
  expect(stream[0]).toBe(0x02);
  const algorithm = { 1: 'AES-256-GCM', 2: 'ChaCha20-Poly1305' }[stream[1]]!;
  const nodeName = { 1: 'aes-256-gcm', 2: 'chacha20-poly1305' }[stream[1]] as 'aes-256-gcm';
  expect(stream[2]).toBe(0);
  const chunkSize = stream.readUInt32BE(3);
  const keyIdLength = stream[7];
  const headerSize = 8 + keyIdLength + 32 + 32 + 7;
  const header = stream.subarray(0, headerSize);
  const salt = header.subarray(8 + keyIdLength + 32, 8 + keyIdLength + 64);
  const prefix = header.subarray(8 + keyIdLength + 64);
  const subkey = Buffer.from(hkdfSync('sha256', key, salt, `stream:${algorithm}`, 32));
  const out: Buffer[] = [];
  let index = 0;
  for (let at = headerSize; at < stream.length; index++) {
    const sealed = stream.subarray(at, at + chunkSize + 16);
    at += sealed.length;
    const last = at >= stream.length;
    const nonce = Buffer.concat([prefix, Buffer.from([index >>> 24, (index >>> 16) & 255, (index >>> 8) & 255, index & 255]), Buffer.from([last ? 1 : 0])]);
    const decipher = createDecipheriv(nodeName, subkey, nonce, { authTagLength: 16 });
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    out.push(decipher.update(sealed.subarray(0, sealed.length - 16)));
    decipher.final();
  }
  return Buffer.concat(out);
}

describe('golden streams (streaming format 0x02)', () => {
  let service: EncryptionService;

  beforeAll(async () => {
    const keyStore = new InMemoryKeyStore();
    await keyStore.save(golden.keyRing, 0);
    // A different configured algorithm on purpose: the stream header, not the config, says how to decrypt.
    const moduleRef = await Test.createTestingModule({
      imports: [EncryptionModule.forRoot({ masterKey: golden.masterKey, keyStore, algorithm: 'AES-256-CBC-HMAC-SHA256' })],
    }).compile();
    await moduleRef.init();
    service = moduleRef.get(EncryptionService);
  });

  it('covers both algorithms, every chunk-boundary case, contexts and explicit keys', () => {
    expect(new Set(golden.cases.map((c) => c.algorithm))).toEqual(new Set(['AES-256-GCM', 'ChaCha20-Poly1305']));
    expect(golden.cases.length).toBeGreaterThanOrEqual(16);
    expect(golden.cases.some((c) => c.context)).toBe(true);
    expect(golden.cases.some((c) => c.explicitKey)).toBe(true);
    expect(new Set(golden.cases.map((c) => c.chunkSize))).toEqual(new Set([64, 65_536, 100, 50]));
  });

  it.each(golden.cases.map((c) => [c.name, c] as const))('%s decrypts to the recorded plaintext', async (_name, c) => {
    const options = { context: c.context, key: c.explicitKey ? explicitKey : undefined };
    const plaintext = await decryptStream(service, Buffer.from(c.ciphertext, 'base64'), options);
    expect(plaintext.equals(expectedPlaintext(c))).toBe(true);
  });

  it('explicit-key streams need their key', async () => {
    const c = golden.cases.find((x) => x.explicitKey)!;
    await expect(decryptStream(service, Buffer.from(c.ciphertext, 'base64'), {})).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('an independent implementation of docs/FORMAT.md decrypts the explicit-key streams', () => {
    const cases = golden.cases.filter((c) => c.explicitKey && !c.context);
    expect(cases.length).toBe(2);
    for (const c of cases) expect(decryptBySpec(Buffer.from(c.ciphertext, 'base64'), explicitKey).equals(expectedPlaintext(c))).toBe(true);
  });
});
