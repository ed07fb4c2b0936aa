// Regenerates test/golden/streams.json: streams (format 0x02) that every future version must still decrypt.
// Run only when the streaming format gains something new (never to "fix" a failing golden test):
//   npm run build --workspace nestjs-encryption && node scripts/generate-golden-streams.mjs
import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EncryptionModule, EncryptionService, InMemoryKeyStore, KeyManagerService } from 'nestjs-encryption';

const masterKey = randomBytes(32);
const explicitKey = randomBytes(32);
const store = new InMemoryKeyStore();

async function encryptStream(service, plaintext, options) {
  const out = [];
  // Odd write sizes, so chunk boundaries never line up with writes.
  const pieces = [];
  for (let at = 0; at < plaintext.length; at += 37) pieces.push(plaintext.subarray(at, at + 37));
  await pipeline(
    Readable.from(pieces),
    service.createEncryptStream(options),
    new Writable({
      write(chunk, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

/** Deterministic text, so a reader can regenerate the plaintext from its description. */
function text(size) {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789\n';
  return Buffer.from(line.repeat(Math.ceil(size / line.length) + 1).slice(0, size), 'utf8');
}

const cases = [];
for (const algorithm of ['AES-256-GCM', 'ChaCha20-Poly1305']) {
  class GoldenModule {}
  Module({ imports: [EncryptionModule.forRoot({ algorithm, masterKey, keyStore: store, enableAsymmetric: false })] })(GoldenModule);
  const app = await NestFactory.createApplicationContext(GoldenModule, { logger: false });
  const service = app.get(EncryptionService);
  const variants = [
    { name: 'empty', size: 0, chunkSize: 64 },
    { name: 'one byte', size: 1, chunkSize: 64 },
    { name: 'one full chunk', size: 64, chunkSize: 64 },
    { name: 'chunk + 1', size: 65, chunkSize: 64 },
    { name: 'several chunks', size: 1000, chunkSize: 64 },
    // Named when 64 KiB was the default chunk size (now 1 MiB); kept so the file's cases stay the same.
    { name: 'default chunk size', size: 70_000, chunkSize: 65_536 },
    { name: 'context', size: 300, chunkSize: 100, context: { file: 'report.pdf', tenant: 'acme' } },
    { name: 'explicit key', size: 200, chunkSize: 50, explicitKey: true },
  ];
  for (const variant of variants) {
    const plaintext = variant.size > 10_000 ? text(variant.size) : randomBytes(variant.size);
    const options = { chunkSize: variant.chunkSize, context: variant.context, key: variant.explicitKey ? explicitKey : undefined };
    const ciphertext = await encryptStream(service, plaintext, options);
    cases.push({
      name: `${algorithm} ${variant.name}`,
      algorithm,
      chunkSize: variant.chunkSize ?? 65_536,
      context: variant.context,
      explicitKey: variant.explicitKey ?? false,
      ...(variant.size > 10_000
        ? { plaintextText: { size: variant.size }, plaintextSha256: createHash('sha256').update(plaintext).digest('hex') }
        : { plaintext: plaintext.toString('hex') }),
      ciphertext: ciphertext.toString('base64'),
    });
  }
  await app.get(KeyManagerService).rotate();
  await app.close();
}

writeFileSync(
  new URL('../test/golden/streams.json', import.meta.url),
  JSON.stringify(
    {
      description:
        'Streaming format (0x02) golden streams. Test keys only, never used anywhere else. Do not regenerate to fix a failure.',
      masterKey: masterKey.toString('base64'),
      explicitKey: explicitKey.toString('base64'),
      keyRing: await store.load(),
      cases,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${cases.length} golden streams`);
