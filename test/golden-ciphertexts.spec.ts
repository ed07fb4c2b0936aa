import 'reflect-metadata';

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { Test } from '@nestjs/testing';
import type { EncryptionAlgorithm, StoredKeyRing } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService, InMemoryKeyStore, KeyNotFoundError } from 'nestjs-encryption';

interface GoldenCase {
  name: string;
  algorithm: EncryptionAlgorithm;
  value: unknown;
  context?: Record<string, string>;
  explicitKey?: boolean;
  ciphertext: string;
}

/** Made by scripts/generate-golden.mjs with format v1; every future version must decrypt them unchanged. */
const golden = JSON.parse(readFileSync(resolve(process.cwd(), 'test/golden/ciphertexts.json'), 'utf8')) as {
  masterKey: string;
  explicitKey: string;
  keyRing: StoredKeyRing;
  cases: GoldenCase[];
};

const expected = (value: unknown) =>
  value && typeof value === 'object' && '$bytes' in value ? Buffer.from((value as { $bytes: string }).$bytes, 'base64') : value;

describe('golden ciphertexts (format v1)', () => {
  let service: EncryptionService;

  beforeAll(async () => {
    const keyStore = new InMemoryKeyStore();
    await keyStore.save(golden.keyRing, 0);
    // A different configured algorithm on purpose: the envelope, not the config, says how to decrypt.
    const moduleRef = await Test.createTestingModule({
      imports: [EncryptionModule.forRoot({ masterKey: golden.masterKey, keyStore, algorithm: 'ChaCha20-Poly1305' })],
    }).compile();
    await moduleRef.init();
    service = moduleRef.get(EncryptionService);
  });

  it('covers every algorithm and payload type', () => {
    const algorithms = new Set(golden.cases.map((c) => c.algorithm));
    expect([...algorithms].sort()).toEqual(['AES-256-CBC-HMAC-SHA256', 'AES-256-GCM', 'ChaCha20-Poly1305']);
    expect(golden.cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(golden.cases.map((c) => [c.name, c] as const))('%s decrypts to the recorded value', async (_name, c) => {
    const options = { context: c.context, key: c.explicitKey ? Buffer.from(golden.explicitKey, 'base64') : undefined };
    await expect(service.decrypt(c.ciphertext, options)).resolves.toEqual(expected(c.value));
  });

  it('explicit-key ciphertexts need their key', async () => {
    const explicitCase = golden.cases.find((c) => c.explicitKey)!;
    await expect(service.decrypt(explicitCase.ciphertext)).rejects.toBeInstanceOf(KeyNotFoundError);
  });
});
