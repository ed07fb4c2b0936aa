import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

import { DecompressionLimitError, DecryptionError } from '../errors/encryption.errors.js';
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

/**
 * gzip's window sized to the payload (9 to 15 bits) and a smaller hash table: for small payloads most
 * of gzip's cost is setting up its default 256 KiB of state, and a window larger than the input
 * can't find more matches. Any gunzip reads the result (its 32 KiB window covers smaller ones).
 */
function gzipOptions(length: number): zlib.ZlibOptions {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(length + 262))));
  return { windowBits, memLevel: windowBits < 15 ? 6 : 8 };
}

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);
const brotliAsync = promisify(zlib.brotliCompress);
const unbrotliAsync = promisify(zlib.brotliDecompress);

/** Below this size a full compression attempt is cheap enough that sampling wouldn't pay. */
const SAMPLING_THRESHOLD = 16 * 1024;
const SAMPLE_SLICE = 1024;
/**
 * Order-0 entropy, in bits per byte, above which a slice is taken as incompressible (already
 * compressed, encrypted, random). Random 1 KiB slices measure about 7.8 (the estimate is biased low for
 * small samples); text and JSON 4 to 6. Deflate can't shrink a slice this close to 8 by more than a few
 * percent.
 */
const INCOMPRESSIBLE_BITS_PER_BYTE = 7.2;

/**
 * Early abort, as btrfs's compression heuristic does it: measure the byte entropy of three 1 KiB
 * slices (start, middle, end); if every slice looks random, the full attempt — tens of milliseconds
 * for 1 MiB, thrown away afterwards — is skipped. Counting bytes costs a few microseconds, a tenth of
 * deflating the same sample.
 */
export function looksCompressible(data: Buffer): boolean {
  if (data.length < SAMPLING_THRESHOLD) return true;
  const middle = (data.length >> 1) - (SAMPLE_SLICE >> 1);
  return [0, middle, data.length - SAMPLE_SLICE].some(
    (start) => bitsPerByte(data, start, SAMPLE_SLICE) < INCOMPRESSIBLE_BITS_PER_BYTE,
  );
}

const byteCounts = new Uint16Array(256);

function bitsPerByte(data: Buffer, start: number, length: number): number {
  byteCounts.fill(0);
  for (let i = start; i < start + length; i++) byteCounts[data[i]]++;
  let entropy = 0;
  for (let byte = 0; byte < 256; byte++) {
    const p = byteCounts[byte] / length;
    if (p) entropy -= p * Math.log2(p);
  }
  return entropy;
}

/** Compresses, or returns `data` itself (so no smaller) when a sample shows it won't compress. */
export async function compress(codec: CompressionCodec, data: Buffer): Promise<Buffer> {
  if (data.length < ASYNC_THRESHOLD) return compressSync(codec, data);
  if (codec === CompressionCodec.None || !looksCompressible(data)) return data;
  switch (codec) {
    case CompressionCodec.Gzip:
      return gzipAsync(data, gzipOptions(data.length));
    case CompressionCodec.Brotli:
      return brotliAsync(data, BROTLI_OPTIONS);
    default:
      return data;
  }
}

/** Compression on the calling thread, whatever the size: for worker threads, which may block. */
export function compressSync(codec: CompressionCodec, data: Buffer): Buffer {
  if (codec === CompressionCodec.None || !looksCompressible(data)) return data;
  switch (codec) {
    case CompressionCodec.Gzip:
      return zlib.gzipSync(data, gzipOptions(data.length));
    case CompressionCodec.Brotli:
      return zlib.brotliCompressSync(data, BROTLI_OPTIONS);
    default:
      return data;
  }
}

/** Compressed payloads this large are decompressed on libuv's thread pool (they may expand 8x or more). */
const ASYNC_DECOMPRESSION_THRESHOLD = ASYNC_THRESHOLD / 8;

/**
 * Decompresses an authenticated payload with a hard cap on output size, so even a valid ciphertext
 * can't exhaust memory: on the calling thread when it is small (no promise), on libuv's threads when
 * large. Past the cap, `DecompressionLimitError`; anything else zlib refuses, `DecryptionError`.
 */
export function decompressPayload(
  codec: CompressionCodec,
  data: Buffer,
  maxOutputLength: number,
): Buffer | Promise<Buffer> {
  const options = { maxOutputLength };
  if (data.length < ASYNC_DECOMPRESSION_THRESHOLD) {
    try {
      switch (codec) {
        case CompressionCodec.Gzip:
          return zlib.gunzipSync(data, options);
        case CompressionCodec.Brotli:
          return zlib.brotliDecompressSync(data, options);
        default:
          return data;
      }
    } catch (error) {
      return decompressionFailure(error, maxOutputLength);
    }
  }
  const decompressed =
    codec === CompressionCodec.Gzip
      ? gunzipAsync(data, options)
      : codec === CompressionCodec.Brotli
        ? unbrotliAsync(data, options)
        : Promise.resolve(data);
  return decompressed.catch((error: unknown) => decompressionFailure(error, maxOutputLength));
}

function decompressionFailure(error: unknown, maxOutputLength: number): never {
  if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
    throw new DecompressionLimitError(maxOutputLength);
  throw new DecryptionError(undefined, undefined, { cause: error });
}
