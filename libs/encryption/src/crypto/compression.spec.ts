import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

import { compress, compressSync, looksCompressible } from './compression.js';
import { CompressionCodec } from './envelope.js';

const json = (size: number) =>
  Buffer.from(JSON.stringify(Array.from({ length: size / 40 }, (_, i) => ({ id: i, name: `customer ${i}` }))).slice(0, size));

describe('compression early abort', () => {
  it('samples large random payloads and skips compressing them (returns the same buffer)', async () => {
    const random = randomBytes(1024 * 1024);
    expect(looksCompressible(random)).toBe(false);
    expect(await compress(CompressionCodec.Gzip, random)).toBe(random);
    expect(compressSync(CompressionCodec.Brotli, random)).toBe(random);
  });

  it('skips payloads that are already compressed', async () => {
    const numbered = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `${i * 7919}`).join(','));
    const gzipped = gzipSync(numbered, { level: 9 });
    expect(gzipped.length).toBeGreaterThan(64 * 1024);
    expect(looksCompressible(gzipped)).toBe(false);
    expect(await compress(CompressionCodec.Gzip, gzipped)).toBe(gzipped);
  });

  it('attempts binary payloads with a skewed byte distribution (sparse numbers, not random)', () => {
    const floats = Buffer.from(new Float64Array(Array.from({ length: 8192 }, (_, i) => i * 0.25)).buffer);
    expect(looksCompressible(floats)).toBe(true);
  });

  it('still compresses large compressible payloads', async () => {
    const text = json(256 * 1024);
    expect(looksCompressible(text)).toBe(true);
    const gz = await compress(CompressionCodec.Gzip, text);
    expect(gz.length).toBeLessThan(text.length / 3);
    expect(gunzipSync(gz).equals(text)).toBe(true);
  });

  it('always attempts payloads below the sampling threshold', () => {
    expect(looksCompressible(randomBytes(8 * 1024))).toBe(true);
  });

  it('attempts a payload whose samples show structure, even when parts of it are random', () => {
    const mixed = Buffer.concat([json(4096), randomBytes(64 * 1024), json(4096)]);
    expect(looksCompressible(mixed)).toBe(true);
  });
});

describe('gzip window sized to the payload', () => {
  it.each([1, 100, 1024, 5000, 70_000, 300_000])('%i bytes round-trip through a standard gunzip', async (size) => {
    const text = Buffer.from('abc123'.repeat(Math.ceil(size / 6)).slice(0, size));
    const gz = await compress(CompressionCodec.Gzip, text);
    expect(gunzipSync(gz).equals(text)).toBe(true);
    expect(compressSync(CompressionCodec.Gzip, text).equals(gz)).toBe(true);
  });
});
