import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

import { CompressionCodec } from './envelope.js';

export type CompressionAlgorithm = 'gzip' | 'brotli';

export const CODEC_BY_ALGORITHM: Record<CompressionAlgorithm, CompressionCodec> = {
  gzip: CompressionCodec.Gzip,
  brotli: CompressionCodec.Brotli,
};

/** Payloads this large are compressed on libuv's thread pool instead of blocking the event loop. */
const ASYNC_THRESHOLD = 128 * 1024;
export const ASYNC_COMPRESSION_THRESHOLD = ASYNC_THRESHOLD;

// Brotli's default quality (11) is far too slow for a request path; 5 compresses about as well as gzip -6.
const BROTLI_OPTIONS: zlib.BrotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } };

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);
const brotliAsync = promisify(zlib.brotliCompress);
const unbrotliAsync = promisify(zlib.brotliDecompress);

export async function compress(codec: CompressionCodec, data: Buffer): Promise<Buffer> {
  const large = data.length >= ASYNC_THRESHOLD;
  switch (codec) {
    case CompressionCodec.Gzip:
      return large ? gzipAsync(data) : zlib.gzipSync(data);
    case CompressionCodec.Brotli:
      return large ? brotliAsync(data, BROTLI_OPTIONS) : zlib.brotliCompressSync(data, BROTLI_OPTIONS);
    default:
      return data;
  }
}

/** Compression on the calling thread, whatever the size: for worker threads, which may block. */
export function compressSync(codec: CompressionCodec, data: Buffer): Buffer {
  switch (codec) {
    case CompressionCodec.Gzip:
      return zlib.gzipSync(data);
    case CompressionCodec.Brotli:
      return zlib.brotliCompressSync(data, BROTLI_OPTIONS);
    default:
      return data;
  }
}

/** Thrown when the output would exceed `maxOutputLength`: a decompression bomb or a misconfigured limit. */
export class DecompressionLimitExceeded extends Error {}

/** Decompresses with a hard cap on output size, so even a valid ciphertext can't exhaust memory. */
export async function decompress(codec: CompressionCodec, data: Buffer, maxOutputLength: number): Promise<Buffer> {
  const options = { maxOutputLength };
  const large = data.length >= ASYNC_THRESHOLD / 8;
  try {
    switch (codec) {
      case CompressionCodec.Gzip:
        return large ? await gunzipAsync(data, options) : zlib.gunzipSync(data, options);
      case CompressionCodec.Brotli:
        return large ? await unbrotliAsync(data, options) : zlib.brotliDecompressSync(data, options);
      default:
        return data;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DecompressionLimitExceeded();
    throw error;
  }
}
