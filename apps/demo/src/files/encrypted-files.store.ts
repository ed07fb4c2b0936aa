import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Inject, Injectable } from '@nestjs/common';
import { EncryptionService } from 'nestjs-encryption';

import type { DemoConfig } from '../config/demo.config.js';
import { DEMO_CONFIG } from '../config/demo.config.js';

export interface StoredFile {
  id: string;
  /** Plaintext bytes received. */
  bytes: number;
  /** Bytes on disk (the streaming format: header and a tag per 1 MiB chunk). */
  storedBytes: number;
}

/**
 * Files kept encrypted on disk, one per id, streamed in and out in constant memory. Each file is
 * bound to its id (the encryption context), so files swapped on disk don't decrypt under another id.
 */
@Injectable()
export class EncryptedFilesStore {
  constructor(
    @Inject(DEMO_CONFIG) private readonly config: DemoConfig,
    private readonly encryption: EncryptionService,
  ) {}

  /** Encrypts `source` to disk; the file appears only once it is complete. */
  async save(source: Readable): Promise<StoredFile> {
    await mkdir(this.config.filesDir, { recursive: true, mode: 0o700 });
    const id = randomUUID();
    const path = this.path(id);
    const partial = `${path}.partial`;
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, counter, this.encryption.createEncryptStream({ context: { file: id } }), createWriteStream(partial, { mode: 0o600 }));
      await rename(partial, path);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    return { id, bytes, storedBytes: (await stat(path)).size };
  }

  /** The decrypted content as a stream, or `undefined` when there is no such file. */
  async open(id: string): Promise<Readable | undefined> {
    const path = this.path(id);
    try {
      await stat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const decrypt = this.encryption.createDecryptStream({ context: { file: id } });
    // pipeline() destroys `decrypt` with the error if reading fails; the consumer sees it there.
    pipeline(createReadStream(path), decrypt).catch(() => undefined);
    return decrypt;
  }

  private path(id: string): string {
    return join(this.config.filesDir, `${id}.enc`);
  }
}
