import { aeadById } from '../crypto/aead.js';
import { compressSync } from '../crypto/compression.js';
import { CompressionCodec } from '../crypto/envelope.js';

/**
 * Sealing many native envelopes with one derived cipher key: the unit of work that runs either on
 * the calling thread or in a worker of `CryptoWorkerPool`. Self-contained (no key ring, no Nest), so
 * a worker gets only what these messages carry: the derived cipher key of one algorithm, never the
 * data key or the master key.
 */
export interface SealParameters {
  cipherId: number;
  /** The derived cipher key (`DataKey.cipherKey`). */
  key: Uint8Array;
  /** A complete header with flags 0 and a zero nonce; each envelope gets its own flags and nonce. */
  headerTemplate: Uint8Array;
  /** The context's AAD suffix (empty for none). */
  context: Uint8Array;
  /** One random nonce per item, concatenated. */
  nonces: Uint8Array;
  /** Payload type per item (`PayloadType`). */
  types: Uint8Array;
}

/** A seal job for a worker: the plaintexts travel concatenated, in one transferable buffer. */
export interface SealJob extends SealParameters {
  /** Codec to try on each item of at least `compressionThreshold` bytes; kept only when smaller. */
  codec: CompressionCodec;
  compressionThreshold: number;
  /** Every plaintext, concatenated. */
  data: Uint8Array;
  /** Byte length of each plaintext in `data`. */
  lengths: Uint32Array;
}

/**
 * Envelopes in transferable buffers, and the length of each: what a worker sends back. Consecutive
 * small envelopes share a buffer; an envelope of `OWN_BUFFER_BYTES` or more has one of its own, so
 * a caller who keeps one envelope of a large batch doesn't keep its neighbours' memory alive too.
 */
export interface PackedEnvelopes {
  /** The envelopes, in order, concatenated into as many buffers as needed (`unpack(buffers, lengths)`). */
  buffers: Uint8Array[];
  lengths: Uint32Array;
  /** Bytes that were encrypted (after compression) of each item. */
  sealedLengths: Uint32Array;
}

const FLAGS_OFFSET = 2;

/** Each item compressed with `codec` when it is at least `threshold` bytes and the output is smaller. */
export function compressAll(
  codec: CompressionCodec,
  threshold: number,
  plaintexts: readonly Buffer[],
): { bytes: Buffer[]; codecs: Uint8Array } {
  const bytes = plaintexts.slice();
  const codecs = new Uint8Array(plaintexts.length);
  if (codec === CompressionCodec.None) return { bytes, codecs };
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i].length < threshold || bytes[i].length === 0) continue;
    const compressed = compressSync(codec, bytes[i]);
    if (compressed.length < bytes[i].length) {
      bytes[i] = compressed;
      codecs[i] = codec;
    }
  }
  return { bytes, codecs };
}

/** Seals each (already compressed) item: the work itself, on whichever thread. `codecs[i]` goes into its flags. */
export function sealAll(parameters: SealParameters, bytes: readonly Buffer[], codecs: Uint8Array): Buffer[] {
  const sealer = sealerFor(parameters);
  return bytes.map((item, i) => {
    const envelope = Buffer.allocUnsafe(sealer.envelopeLength(item.length));
    sealer.sealInto(i, item, codecs[i], envelope, 0);
    return envelope;
  });
}

/** Envelopes at least this large get a buffer of their own (`PackedEnvelopes`). */
const OWN_BUFFER_BYTES = 64 * 1024;

/**
 * A worker's side of a seal job: unpack, compress, and seal every envelope straight into the buffers
 * that are transferred back, without copies: allocating and faulting in a fresh buffer per envelope
 * and another to concatenate them cost a worker about as much as the encryption. `onSealed(i)` runs
 * once item `i` is sealed (the worker wipes its staged plaintext then, while it is still in cache).
 */
export function runSealJob(job: SealJob, onSealed?: (index: number, plaintext: Buffer) => void): PackedEnvelopes {
  const plaintexts = unpack([job.data], job.lengths);
  const { bytes, codecs } = compressAll(job.codec, job.compressionThreshold, plaintexts);
  const sealer = sealerFor(job);
  const lengths = Uint32Array.from(bytes, (item) => sealer.envelopeLength(item.length));
  const buffers: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; ) {
    // One buffer for a large envelope, or for a run of small ones up to OWN_BUFFER_BYTES.
    let end = start + 1;
    let size = lengths[start];
    while (end < bytes.length && size < OWN_BUFFER_BYTES && lengths[end] < OWN_BUFFER_BYTES) size += lengths[end++];
    const buffer = Buffer.allocUnsafeSlow(size);
    for (let i = start, at = 0; i < end; at += lengths[i++]) {
      sealer.sealInto(i, bytes[i], codecs[i], buffer, at);
      onSealed?.(i, plaintexts[i]);
    }
    buffers.push(buffer);
    start = end;
  }
  return { buffers, lengths, sealedLengths: Uint32Array.from(bytes, (item) => item.length) };
}

/** Writes envelopes of one job: its parameters decoded once, each envelope sealed in place. */
function sealerFor(parameters: SealParameters) {
  const cipher = aeadById(parameters.cipherId);
  if (!cipher) throw new Error(`Unknown algorithm id ${parameters.cipherId}`);
  const key = asBuffer(parameters.key);
  const template = asBuffer(parameters.headerTemplate);
  const context = asBuffer(parameters.context);
  const nonces = asBuffer(parameters.nonces);
  const nonceOffset = template.length - cipher.nonceSize;
  return {
    envelopeLength: (plaintextLength: number) => template.length + cipher.ciphertextLength(plaintextLength) + cipher.tagSize,
    /** Item `index`'s envelope (header, ciphertext, tag) into `out` from `at`. */
    sealInto(index: number, plaintext: Buffer, codec: number, out: Buffer, at: number): void {
      const header = out.subarray(at, at + template.length);
      template.copy(header);
      header[FLAGS_OFFSET] = parameters.types[index] | (codec << 2);
      nonces.copy(header, nonceOffset, index * cipher.nonceSize, (index + 1) * cipher.nonceSize);
      const aad = context.length ? Buffer.concat([header, context]) : header;
      const body = cipher.ciphertextLength(plaintext.length) + cipher.tagSize;
      const written = cipher.sealInto(key, header.subarray(nonceOffset), plaintext, aad, out, at + template.length);
      // allocUnsafe memory holds old bytes: never hand out an envelope that isn't fully written.
      if (written !== body) throw new Error(`${cipher.name} wrote ${written} bytes, expected ${body}`);
    },
  };
}

/**
 * Items packed back to back into `buffers` (a job's staged plaintexts, a worker's envelopes), as views
 * of them, one per length (no copies). Every buffer must be used up exactly.
 */
export function unpack(buffers: readonly Uint8Array[], lengths: Uint32Array): Buffer[] {
  const items: Buffer[] = new Array(lengths.length);
  let i = 0;
  for (const buffer of buffers) {
    const data = asBuffer(buffer);
    let at = 0;
    for (; i < lengths.length && at + lengths[i] <= data.length; at += lengths[i++]) items[i] = data.subarray(at, at + lengths[i]);
    if (at !== data.length) throw new Error(`A packed buffer of ${data.length} bytes holds ${at} bytes of items`);
  }
  if (i !== lengths.length) throw new Error(`Expected ${lengths.length} packed items, found ${i}`);
  return items;
}

/** Opening one large envelope whose key the caller has already looked up and checked. */
export interface OpenJob {
  cipherId: number;
  key: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
  aad: Uint8Array;
}

/** The plaintext; throws when the tag doesn't verify. */
export function runOpenJob(job: OpenJob): Buffer {
  const cipher = aeadById(job.cipherId);
  if (!cipher) throw new Error(`Unknown algorithm id ${job.cipherId}`);
  return cipher.open(asBuffer(job.key), asBuffer(job.nonce), asBuffer(job.ciphertext), asBuffer(job.tag), asBuffer(job.aad));
}

/** Structured clone delivers plain Uint8Arrays to a worker; `node:crypto` and `copy` want Buffers. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
