/**
 * One contender of the streaming benchmark, in a process of its own so its memory is its own:
 * `node --expose-gc stream-child.js <contender> <MiB> <repetitions>`. Each repetition encrypts the
 * stream to a temporary file and decrypts it back (the same disk path for every contender); the first
 * repetition also checks the round trip byte for byte and is not timed. Prints one JSON line.
 */
import 'reflect-metadata';

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { NestFactory } from '@nestjs/core';
import { EncryptionModule, EncryptionService } from 'nestjs-encryption';

export interface StreamChildResult {
  contender: string;
  bytes: number;
  /** Median seconds of one encrypt + decrypt of the whole stream. */
  seconds: number;
  /** Median CPU seconds of this process (all threads) for one encrypt + decrypt. */
  cpuSeconds: number;
  /** Plaintext MB/s (10^6 bytes) through one round trip. */
  mbPerSec: number;
  /** Peak growth over the idle process, measured every few milliseconds. */
  peakRssGrowth: number;
  peakArrayBuffersGrowth: number;
  baselineRss: number;
}

interface StreamPair {
  encrypt(): Duplex;
  /** Called after `encrypt()`'s stream finished (the bare baseline needs the tag it produced). */
  decrypt(): Duplex;
  close?(): Promise<void>;
}

const PIECE = 64 * 1024;

async function contender(name: string): Promise<StreamPair> {
  switch (name) {
    case 'node:crypto': {
      const key = randomBytes(32);
      const iv = randomBytes(12);
      let tag: Buffer | undefined;
      return {
        encrypt() {
          const cipher = createCipheriv('aes-256-gcm', key, iv);
          cipher.once('end', () => (tag = cipher.getAuthTag()));
          return cipher;
        },
        decrypt() {
          const decipher = createDecipheriv('aes-256-gcm', key, iv);
          decipher.setAuthTag(tag!);
          return decipher;
        },
      };
    }
    case 'nestjs-encryption': {
      const app = await NestFactory.createApplicationContext(EncryptionModule.forRoot({ enableAsymmetric: false }), { logger: false });
      const service = app.get(EncryptionService);
      return { encrypt: () => service.createEncryptStream(), decrypt: () => service.createDecryptStream(), close: () => app.close() };
    }
    case 'aws': {
      const client = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
      const keyring = new RawAesKeyringNode({
        keyName: 'bench-key',
        keyNamespace: 'bench',
        unencryptedMasterKey: randomBytes(32),
        wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      });
      return { encrypt: () => client.encryptStream(keyring) as unknown as Duplex, decrypt: () => client.decryptStream(keyring) as unknown as Duplex };
    }
    default:
      throw new Error(`unknown contender ${name}`);
  }
}

async function main(): Promise<void> {
  const [name, mib, repetitions] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] ?? 3)];
  const total = mib * 1024 * 1024;
  const piece = randomBytes(PIECE);
  const pair = await contender(name);
  const file = join(tmpdir(), `stream-bench-${process.pid}.bin`);

  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakArrayBuffers = base.arrayBuffers;
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > peakRss) peakRss = now.rss;
    if (now.arrayBuffers > peakArrayBuffers) peakArrayBuffers = now.arrayBuffers;
  };
  const timer = setInterval(sample, 5);

  const source = () => {
    let produced = 0;
    return new Readable({
      read() {
        if (produced >= total) return this.push(null);
        produced += piece.length;
        this.push(piece);
      },
    });
  };
  const sink = (hash?: ReturnType<typeof createHash>) => {
    let writes = 0;
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash?.update(chunk);
        if (++writes % 32 === 0) sample();
        callback();
      },
    });
  };

  const times: number[] = [];
  const cpuTimes: number[] = [];
  try {
    for (let repetition = 0; repetition <= repetitions; repetition++) {
      const check = repetition === 0;
      const received = check ? createHash('sha256') : undefined;
      const cpuStart = process.cpuUsage();
      const start = process.hrtime.bigint();
      await pipeline(source(), pair.encrypt(), createWriteStream(file));
      await pipeline(createReadStream(file, { highWaterMark: PIECE }), pair.decrypt(), sink(received));
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpu = process.cpuUsage(cpuStart);
      if (check) {
        const sent = createHash('sha256');
        for (let at = 0; at < total; at += PIECE) sent.update(piece);
        if (sent.digest('hex') !== received!.digest('hex')) throw new Error(`${name} did not round-trip the stream`);
      } else {
        times.push(seconds);
        cpuTimes.push((cpu.user + cpu.system) / 1e6);
      }
    }
  } finally {
    clearInterval(timer);
    rmSync(file, { force: true });
    await pair.close?.();
  }
  sample();
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
  const seconds = median(times);
  const result: StreamChildResult = {
    contender: name,
    bytes: total,
    seconds,
    cpuSeconds: median(cpuTimes),
    mbPerSec: total / seconds / 1e6,
    peakRssGrowth: peakRss - base.rss,
    peakArrayBuffersGrowth: peakArrayBuffers - base.arrayBuffers,
    baselineRss: base.rss,
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
