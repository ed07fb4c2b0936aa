import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import type { EncryptionService } from 'nestjs-encryption';

import { createEncryptionApp, envelopeCodec } from '../encryption-app.js';
import type { Contender } from '../harness.js';
import { measure } from '../harness.js';
import type { Payload } from '../payloads.js';
import { benchmarkPayloads, encodeLikeAUser } from '../payloads.js';
import type { Suite, TargetCheck } from '../suite.js';
import { formatMb, formatOps, formatRatio, formatSpread, target } from '../suite.js';

const IV_SIZE = 12;
const TAG_SIZE = 16;

/** Targets from the performance issue: service round trips per second relative to bare node:crypto. */
const TARGETS: Record<string, number> = { '1 KiB JSON': 0.8, '1 MiB random bytes': 0.95 };

/**
 * `EncryptionService` encrypt+decrypt round trips against the same round trip written by hand with
 * `node:crypto` AES-256-GCM, for the default configuration and with compression disabled.
 */
export const roundTripSuite: Suite = {
  id: 'round-trip',
  title: 'Round trip: EncryptionService vs bare node:crypto AES-256-GCM',
  async run({ measure: options, log }) {
    const withDefaults = await createEncryptionApp({});
    const uncompressed = await createEncryptionApp({ enableCompression: false });
    const rows: string[][] = [];
    const targets: TargetCheck[] = [];
    try {
      for (const payload of benchmarkPayloads()) {
        log(`round trip: ${payload.name}`);
        const defaultEnvelope = await withDefaults.service.encrypt(payload.value as never);
        const contenders: Contender[] = [
          { name: 'node:crypto AES-256-GCM', run: bareRoundTrip(payload), bytesPerOp: payload.size },
          { name: 'EncryptionService, default config', run: await serviceRoundTrip(withDefaults.service, payload), bytesPerOp: payload.size },
          {
            name: 'EncryptionService, enableCompression: false',
            run: await serviceRoundTrip(uncompressed.service, payload),
            bytesPerOp: payload.size,
          },
        ];
        const measured = await measure(contenders, options);
        measured.results.forEach((result, index) => {
          const ratio = index === 0 ? 1 : measured.ratio(index, 0);
          const compressed = index === 1 && envelopeCodec(defaultEnvelope) !== 0;
          rows.push([
            index === 0 ? `${payload.name} (${payload.size.toLocaleString('en-US')} B)` : '',
            result.name + (compressed ? ` (gzipped to ${defaultEnvelope.length.toLocaleString('en-US')} B envelope)` : ''),
            formatOps(result.opsPerSec),
            formatMb(result.mbPerSec),
            formatSpread(result.spread),
            index === 0 ? '1.00' : formatRatio(ratio),
          ]);
          const minimum = TARGETS[payload.name];
          if (index > 0 && minimum !== undefined) {
            targets.push(target(`${payload.name}, ${result.name.replace('EncryptionService, ', '')}: service/bare`, ratio, minimum));
          }
        });
      }
    } finally {
      await withDefaults.app.close();
      await uncompressed.app.close();
    }

    return {
      description: [
        'One operation is a full round trip: encrypt then decrypt, including encoding the input and restoring it ' +
          '(JSON payloads: `JSON.stringify` / `JSON.parse` as UTF-8; strings: UTF-8; bytes: as is). MB/s counts the ' +
          'payload bytes once per round trip (1 MB = 10^6 bytes).',
        '*node:crypto AES-256-GCM* is what a careful user writes by hand: a 32-byte key, a fresh 12-byte IV from ' +
          '`randomBytes`, `createCipheriv` / `createDecipheriv` with the 16-byte auth tag, and `iv || ciphertext || tag` ' +
          'in one Buffer. *EncryptionService* is created with `NestFactory.createApplicationContext(EncryptionModule.forRoot(...))` ' +
          'and called with `await service.encrypt(value)` / `await service.decrypt(envelope)`; its envelope also carries ' +
          'the version, key id and key commitment, authenticated as AAD, and it checks the key commitment on decryption.',
        'The default configuration compresses payloads of at least `compressionThreshold` (1024) bytes with gzip and keeps ' +
          'the result only when it is smaller, so the 1 KiB and 64 KiB JSON documents are gzipped and the 1 MiB random ' +
          'payload pays for a gzip attempt that is thrown away.',
      ],
      tables: [{ headers: ['Payload', 'Contender', 'ops/s', 'MB/s', 'spread', 'service/bare'], rows }],
      targets,
    };
  },
};

/** The hand-written baseline: a fresh IV per message, `iv || ciphertext || tag` in one Buffer. */
function bareRoundTrip(payload: Payload): () => unknown {
  const key = randomBytes(32);
  const decode = decoder(payload);
  const roundTrip = () => {
    const plaintext = encodeLikeAUser(payload);
    const iv = randomBytes(IV_SIZE);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);

    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_SIZE));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const opened = decipher.update(sealed.subarray(IV_SIZE, sealed.length - TAG_SIZE));
    decipher.final();
    return decode(opened);
  };
  check(payload, roundTrip(), 'node:crypto');
  return roundTrip;
}

async function serviceRoundTrip(service: EncryptionService, payload: Payload): Promise<() => Promise<unknown>> {
  const value = payload.value as never;
  const roundTrip = async () => service.decrypt(await service.encrypt(value));
  check(payload, await roundTrip(), 'EncryptionService');
  return roundTrip;
}

function decoder(payload: Payload): (bytes: Buffer) => unknown {
  switch (payload.kind) {
    case 'string':
      return (bytes) => bytes.toString('utf8');
    case 'json':
      return (bytes) => JSON.parse(bytes.toString('utf8'));
    case 'bytes':
      return (bytes) => bytes;
  }
}

/** A contender that doesn't round-trip correctly would be measuring the wrong thing. */
function check(payload: Payload, output: unknown, who: string): void {
  if (!isDeepStrictEqual(output, payload.value)) throw new Error(`${who} did not round-trip ${payload.name}`);
}
