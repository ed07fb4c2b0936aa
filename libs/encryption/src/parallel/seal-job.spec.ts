import { randomBytes } from 'node:crypto';

import { AES_256_GCM } from '../crypto/aead.js';
import { CompressionCodec } from '../crypto/envelope.js';
import { runSealJob, sealAll, unpack } from './seal-job.js';

describe('runSealJob', () => {
  const sizes = [10, 100_000, 20, 30, 0, 70_000, 5];
  const plaintexts = sizes.map((size) => randomBytes(size));
  const parameters = {
    cipherId: AES_256_GCM.id,
    key: randomBytes(32),
    headerTemplate: Buffer.alloc(24),
    context: Buffer.alloc(0),
    nonces: randomBytes(sizes.length * 12),
    types: new Uint8Array(sizes.length),
  };
  const job = {
    ...parameters,
    codec: CompressionCodec.None,
    compressionThreshold: 1024,
    data: Buffer.concat(plaintexts),
    lengths: Uint32Array.from(sizes),
  };

  it('seals what sealAll seals, large envelopes in buffers of their own and runs of small ones together', () => {
    const sealed: number[] = [];
    const output = runSealJob(job, (index) => sealed.push(index));
    const envelopes = unpack(output.buffers, output.lengths);
    const expected = sealAll(parameters, plaintexts, new Uint8Array(sizes.length));
    expect(envelopes.map((envelope) => envelope.toString('hex'))).toEqual(expected.map((envelope) => envelope.toString('hex')));
    expect(sealed).toEqual(sizes.map((_, i) => i));
    expect(Array.from(output.sealedLengths)).toEqual(sizes);
    // [10] [100 000] [20, 30, 0] [70 000] [5] (each envelope 40 bytes longer): 64 KiB or more alone.
    expect(output.buffers.map((buffer) => buffer.byteLength)).toEqual([50, 100_040, 60 + 70 + 40, 70_040, 45]);
    for (const envelope of envelopes.filter((e) => e.length >= 64 * 1024)) {
      expect(envelope.byteOffset).toBe(0);
      expect(envelope.buffer.byteLength).toBe(envelope.length);
    }
  });
});
