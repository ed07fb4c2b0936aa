// Regenerates test/golden/ciphertexts.json: envelopes that every future version must still decrypt.
// Run only when the format gains something new (never to "fix" a failing golden test):
//   npm run build --workspace nestjs-encryption && node scripts/generate-golden.mjs
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { EncryptionModule, EncryptionService, InMemoryKeyStore, KeyManagerService } from 'nestjs-encryption';

const masterKey = randomBytes(32);
const store = new InMemoryKeyStore();
const explicitKey = randomBytes(32);
const values = {
  string: 'Grüße, 世界 🔐',
  emptyString: '',
  bytes: { $bytes: Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64') },
  json: { name: 'Ada', tags: ['a', 'b'], n: 3.5, ok: true, none: null },
  jsonNumber: 42,
  jsonNull: null,
  largeText: 'lorem ipsum dolor sit amet '.repeat(200),
};
const decode = (v) => (v && typeof v === 'object' && '$bytes' in v ? Buffer.from(v.$bytes, 'base64') : v);

const cases = [];
for (const algorithm of ['AES-256-GCM', 'ChaCha20-Poly1305', 'AES-256-CBC-HMAC-SHA256']) {
  for (const compressionAlgorithm of ['gzip', 'brotli']) {
    class GoldenModule {}
    Module({ imports: [EncryptionModule.forRoot({ algorithm, compressionAlgorithm, masterKey, keyStore: store })] })(GoldenModule);
    const app = await NestFactory.createApplicationContext(GoldenModule, { logger: false });
    const service = app.get(EncryptionService);
    for (const [name, value] of Object.entries(values)) {
      if (compressionAlgorithm === 'brotli' && name !== 'largeText') continue;
      const options = name === 'json' ? { context: { tenant: 'acme', purpose: 'golden' } } : {};
      cases.push({
        name: `${algorithm} ${compressionAlgorithm} ${name}`,
        algorithm,
        value: values[name],
        context: options.context,
        ciphertext: await service.encryptToString(decode(value), options),
      });
    }
    cases.push({
      name: `${algorithm} explicit key`,
      algorithm,
      value: 'made with an explicit key',
      explicitKey: true,
      ciphertext: await service.encryptToString('made with an explicit key', { key: explicitKey }),
    });
    // Spread the cases over several keys of one ring, as real data is.
    await app.get(KeyManagerService).rotate();
    await app.close();
  }
}

writeFileSync(
  new URL('../test/golden/ciphertexts.json', import.meta.url),
  JSON.stringify(
    {
      description: 'Format v1 golden ciphertexts. Test keys only, never used anywhere else. Do not regenerate to fix a failure.',
      masterKey: masterKey.toString('base64'),
      explicitKey: explicitKey.toString('base64'),
      keyRing: await store.load(),
      cases,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${cases.length} golden ciphertexts`);
