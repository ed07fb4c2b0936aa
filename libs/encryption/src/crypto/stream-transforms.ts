import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { TransformCallback, TransformOptions } from 'node:stream';
import { Transform } from 'node:stream';

import { DecryptionError } from '../errors/encryption.errors.js';
import type { AeadCipher } from './aead.js';
import type { StreamHeader } from './stream-header.js';
import { chunkNonce, MAX_STREAM_CHUNKS, parseStreamHeader, pendingStreamHeaderSize, STREAM_TAG_SIZE } from './stream-header.js';

/** `node:crypto` names of the stream ciphers, by algorithm id. */
const NODE_CIPHER: Record<number, 'aes-256-gcm' | 'chacha20-poly1305'> = { 1: 'aes-256-gcm', 2: 'chacha20-poly1305' };

/** How a stream ended, for metrics: bytes in and out, and the error when it failed. */
export interface StreamOutcome {
  plaintextBytes: number;
  ciphertextBytes: number;
  error?: unknown;
}

/**
 * Buffers written pieces and hands out exactly `n` bytes as views (no copies), so a chunk is sealed
 * or opened piece by piece however the input was split.
 */
class PieceQueue {
  private pieces: Buffer[] = [];
  private head = 0;
  length = 0;

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.length += piece.length;
  }

  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let remaining = n;
    while (remaining > 0) {
      const piece = this.pieces[this.head];
      if (piece.length <= remaining) {
        out.push(piece);
        this.head++;
        remaining -= piece.length;
      } else {
        out.push(piece.subarray(0, remaining));
        this.pieces[this.head] = piece.subarray(remaining);
        remaining = 0;
      }
    }
    if (this.head > 64) {
      this.pieces = this.pieces.slice(this.head);
      this.head = 0;
    }
    this.length -= n;
    return out;
  }

  /** The first `n` bytes (or fewer, when fewer are buffered), copied, without consuming them. */
  peek(n: number): Buffer {
    return Buffer.concat(this.pieces.slice(this.head), Math.min(n, this.length));
  }
}

/**
 * Bytes per piece a sealed chunk is pushed in. Copying a chunk's ciphertext and tag into pieces this
 * large costs less than what a destination spends on the many small writes it would get otherwise
 * (a write per cipher output and per tag: a file took ~15% more CPU). Larger pieces made V8 collect
 * the Buffers less often, so memory grew (256 KiB pieces: ~100 MiB through a 256 MiB stream).
 */
const SEALED_PIECE_SIZE = 128 * 1024;

/** Gathers one sealed chunk, whose exact size is known, into pieces of up to `SEALED_PIECE_SIZE`. */
class SealedChunkPieces {
  private piece?: Buffer;
  private filled = 0;

  constructor(
    private remaining: number,
    private readonly emit: (piece: Buffer) => void,
  ) {}

  write(bytes: Buffer): void {
    if (bytes.length > this.remaining) throw new Error('a sealed chunk came out longer than its plaintext and tag');
    this.remaining -= bytes.length;
    for (let from = 0; from < bytes.length; ) {
      // Sized to what is left of the chunk, so a small chunk doesn't hold a large buffer.
      this.piece ??= Buffer.allocUnsafe(Math.min(SEALED_PIECE_SIZE, bytes.length - from + this.remaining));
      const copied = bytes.copy(this.piece, this.filled, from);
      from += copied;
      this.filled += copied;
      if (this.filled === this.piece.length) {
        this.emit(this.piece);
        this.piece = undefined;
        this.filled = 0;
      }
    }
  }

  /** Every byte was written and emitted (none of a piece is left uninitialized). */
  end(): void {
    if (this.remaining !== 0 || this.piece) throw new Error('a sealed chunk came out shorter than its plaintext and tag');
  }
}

export interface EncryptStreamInit {
  cipher: AeadCipher;
  /** The per-stream subkey. */
  key: Buffer;
  header: StreamHeader;
  /** The context's AAD suffix (empty for none). */
  context: Buffer;
  onEnd?(outcome: StreamOutcome): void;
}

/**
 * Plaintext in, stream format out (crypto/stream-header.ts). Holds at most one chunk plus what the
 * writer hands it, and respects backpressure (Transform defers `_transform` callbacks while the
 * reader is behind), so memory stays constant whatever the stream's size.
 */
export class EncryptStream extends Transform {
  private readonly queue = new PieceQueue();
  private readonly aad: Buffer;
  private index = 0;
  private started = false;
  private plaintextBytes = 0;
  private ciphertextBytes = 0;

  constructor(
    private readonly init: EncryptStreamInit,
    options?: TransformOptions,
  ) {
    super(options);
    this.aad = init.context.length ? Buffer.concat([init.header.bytes, init.context]) : init.header.bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.start();
      this.queue.push(chunk);
      this.plaintextBytes += chunk.length;
      // A full chunk is sealed only once more data follows, because the last chunk is flagged as last.
      while (this.queue.length > this.init.header.chunkSize) this.seal(this.init.header.chunkSize, false);
      callback();
    } catch (error) {
      this.fail(error, callback);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.start();
      this.seal(this.queue.length, true);
      this.init.key.fill(0);
      this.init.onEnd?.({ plaintextBytes: this.plaintextBytes, ciphertextBytes: this.ciphertextBytes });
      callback();
    } catch (error) {
      this.fail(error, callback);
    }
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.out(this.init.header.bytes);
  }

  private seal(size: number, last: boolean): void {
    if (this.index >= MAX_STREAM_CHUNKS) throw new RangeError('A stream holds at most 2^32 chunks: use a larger chunk size');
    const { cipher, key, header } = this.init;
    const c = createCipheriv(NODE_CIPHER[cipher.id] as 'aes-256-gcm', key, chunkNonce(header.noncePrefix, this.index, last), {
      authTagLength: STREAM_TAG_SIZE,
    });
    c.setAAD(this.aad);
    const sealed = new SealedChunkPieces(size + STREAM_TAG_SIZE, (piece) => this.out(piece));
    for (const piece of this.queue.take(size)) sealed.write(c.update(piece));
    sealed.write(c.final());
    sealed.write(c.getAuthTag());
    sealed.end();
    this.index++;
  }

  private out(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.ciphertextBytes += bytes.length;
    this.push(bytes);
  }

  private fail(error: unknown, callback: TransformCallback): void {
    this.init.key.fill(0);
    this.init.onEnd?.({ plaintextBytes: this.plaintextBytes, ciphertextBytes: this.ciphertextBytes, error });
    callback(error as Error);
  }
}

export interface DecryptStreamInit {
  /** The per-stream subkey for a parsed header; rejects (e.g. `KeyNotFoundError`) when there is none. */
  resolveKey(header: StreamHeader): Buffer | Promise<Buffer>;
  /** The context's AAD suffix (empty for none). */
  context: Buffer;
  onEnd?(outcome: StreamOutcome): void;
}

/**
 * Stream format in, plaintext out. A chunk's plaintext is released only after its tag verifies;
 * reordered, dropped, duplicated, altered or appended chunks fail with `DecryptionError`, and so does
 * a stream that stops before its last chunk, at its end. Like any streaming decryption, output
 * already released before a failure must be discarded by the consumer: the stream is authentic only
 * once it ends without an error.
 */
export class DecryptStream extends Transform {
  private readonly queue = new PieceQueue();
  private header?: StreamHeader;
  private key?: Buffer;
  private aad: Buffer = Buffer.alloc(0);
  private index = 0;
  private done = false;
  private plaintextBytes = 0;
  private ciphertextBytes = 0;

  constructor(
    private readonly init: DecryptStreamInit,
    options?: TransformOptions,
  ) {
    super(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.done) return this.fail(new DecryptionError(), callback);
    this.queue.push(chunk);
    this.ciphertextBytes += chunk.length;
    if (this.key) return this.drain(false, callback);
    if (this.header) return callback(); // waiting for the key
    const needed = pendingStreamHeaderSize(this.queue.peek(8));
    if (needed === -1) return this.fail(new DecryptionError(), callback);
    if (needed === undefined || this.queue.length < needed) return callback();
    const header = parseStreamHeader(Buffer.concat(this.queue.take(needed)));
    if (!header) return this.fail(new DecryptionError(), callback);
    this.header = header;
    this.aad = this.init.context.length ? Buffer.concat([header.bytes, this.init.context]) : header.bytes;
    let key: Buffer | Promise<Buffer>;
    try {
      key = this.init.resolveKey(header);
    } catch (error) {
      return this.fail(error, callback);
    }
    if (Buffer.isBuffer(key)) {
      this.key = key;
      return this.drain(false, callback);
    }
    key.then(
      (resolved) => {
        this.key = resolved;
        this.drain(false, callback);
      },
      (error: unknown) => this.fail(error, callback),
    );
  }

  override _flush(callback: TransformCallback): void {
    // A stream without a complete header, or a key, is not a stream.
    if (!this.key || this.done) return this.fail(new DecryptionError(), callback);
    this.drain(true, (error) => {
      if (error) return callback(error);
      this.key!.fill(0);
      this.init.onEnd?.({ plaintextBytes: this.plaintextBytes, ciphertextBytes: this.ciphertextBytes });
      callback();
    });
  }

  private drain(final: boolean, callback: TransformCallback): void {
    try {
      const sealedChunk = this.header!.chunkSize + STREAM_TAG_SIZE;
      // A full chunk is opened as "not last" only when more bytes follow it.
      while (this.queue.length > sealedChunk) this.open(sealedChunk, false);
      if (final) {
        if (this.queue.length < STREAM_TAG_SIZE) throw new DecryptionError();
        this.open(this.queue.length, true);
        this.done = true;
      }
      callback();
    } catch (error) {
      this.fail(error, callback);
    }
  }

  private open(size: number, last: boolean): void {
    if (this.index >= MAX_STREAM_CHUNKS) throw new DecryptionError();
    const header = this.header!;
    const pieces = this.queue.take(size);
    const tag = takeTail(pieces, STREAM_TAG_SIZE);
    const d = createDecipheriv(NODE_CIPHER[header.cipher.id] as 'aes-256-gcm', this.key!, chunkNonce(header.noncePrefix, this.index, last), {
      authTagLength: STREAM_TAG_SIZE,
    });
    d.setAAD(this.aad);
    d.setAuthTag(tag);
    const plaintext: Buffer[] = [];
    for (const piece of pieces) plaintext.push(d.update(piece));
    try {
      d.final();
    } catch (error) {
      throw new DecryptionError(undefined, undefined, { cause: error });
    }
    this.index++;
    for (const bytes of plaintext) {
      if (bytes.length === 0) continue;
      this.plaintextBytes += bytes.length;
      this.push(bytes);
    }
  }

  private fail(error: unknown, callback: TransformCallback): void {
    this.done = true;
    this.key?.fill(0);
    this.init.onEnd?.({ plaintextBytes: this.plaintextBytes, ciphertextBytes: this.ciphertextBytes, error });
    callback(error as Error);
  }
}

/** Removes the last `n` bytes from `pieces` (in place) and returns them. */
function takeTail(pieces: Buffer[], n: number): Buffer {
  const last = pieces[pieces.length - 1];
  if (last && last.length >= n) {
    pieces[pieces.length - 1] = last.subarray(0, last.length - n);
    return last.subarray(last.length - n);
  }
  const tail: Buffer[] = [];
  let remaining = n;
  while (remaining > 0) {
    const piece = pieces.pop()!;
    if (piece.length <= remaining) {
      tail.unshift(piece);
      remaining -= piece.length;
    } else {
      tail.unshift(piece.subarray(piece.length - remaining));
      pieces.push(piece.subarray(0, piece.length - remaining));
      remaining = 0;
    }
  }
  return Buffer.concat(tail, n);
}
