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
    const notes: string[] = [];
    try {
      for (const payload of benchmarkPayloads()) {
        log(`round trip: ${payload.name}`);
        const contenders: Contender[] = [
          { name: 'node:crypto AES-256-GCM', run: bareRoundTrip(payload), bytesPerOp: payload.size },
          { name: 'EncryptionService, default config', run: await serviceRoundTrip(withDefaults.service, payload), bytesPerOp: payload.size },
          {
            name: 'EncryptionService, enableCompression: false',
            run: await serviceRoundTrip(uncompressed.service, payload),
            bytesPerOp: payload.size,
          },
        ];
        const defaultEnvelope = await withDefaults.service.encrypt(payload.value as never);
        const compressed = envelopeCodec(defaultEnvelope) !== 0;
        const envelopes = [
          IV_SIZE + payload.size + TAG_SIZE,
          defaultEnvelope.length,
          (await uncompressed.service.encrypt(payload.value as never)).length,
        ];
        const measured = await measure(contenders, options);
        const ratios = measured.results.map((_, index) => (index === 0 ? 1 : measured.ratio(index, 0, 'cpu')));
        measured.results.forEach((result, index) => {
          rows.push([
            index === 0 ? `${payload.name} (${payload.size.toLocaleString('en-US')} B)` : '',
            result.name,
            `${envelopes[index].toLocaleString('en-US')}${index === 1 && compressed ? ' (gzip)' : ''}`,
            formatOps(result.opsPerSec),
            formatMb(result.mbPerSec),
            formatOps(result.opsPerCpuSec),
            formatSpread(result.spread('cpu')),
            formatRatio(ratios[index]),
            formatRatio(index === 0 ? 1 : measured.ratio(index, 0, 'wall')),
          ]);
        });
        const minimum = TARGETS[payload.name];
        if (minimum !== undefined) {
          targets.push(target(`${payload.name}, default config: service/bare`, ratios[1], minimum));
          targets.push(target(`${payload.name}, \`enableCompression: false\`: service/bare`, ratios[2], minimum));
          notes.push(targetNote(payload, minimum, ratios, envelopes, compressed, measured.results.map((r) => r.opsPerCpuSec)));
        }
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
      tables: [
        {
          headers: ['Payload', 'Contender', 'ciphertext B', 'ops/s', 'MB/s', 'ops/CPU-s', 'spread', 'service/bare (CPU)', 'service/bare (wall)'],
          rows,
        },
      ],
      targets,
      notes: [
        ...notes,
        'For small payloads the service can beat the hand-written baseline: it draws nonces from a pooled CSPRNG ' +
          'buffer (one `randomFillSync` per 4 KiB), while the baseline pays a `randomBytes(12)` call per message, ' +
          'which costs about as much as sealing a small message.',
      ],
    };
  },
};

/** Which configuration meets the target for this payload, and what the default configuration pays for. */
function targetNote(
  payload: Payload,
  minimum: number,
  ratios: number[],
  envelopes: number[],
  compressed: boolean,
  opsPerCpuSec: number[],
): string {
  const verdict = (ratio: number) => (ratio >= minimum ? 'meets' : 'misses');
  const extraMs = (1 / opsPerCpuSec[1] - 1 / opsPerCpuSec[2]) * 1000;
  const cost = extraMs >= 1 ? `${extraMs.toFixed(1)} ms` : `${Math.round(extraMs * 1000)} µs`;
  const why = compressed
    ? `it gzips this payload on encryption and gunzips it on decryption, about ${cost} of CPU per round trip, for a ` +
      `${Math.round((1 - envelopes[1] / envelopes[2]) * 100)}% smaller ciphertext`
    : `it tries gzip on this payload and throws the output away (no smaller), about ${cost} of CPU per round trip`;
  return (
    `**${payload.name} (${payload.size.toLocaleString('en-US')} B), target service/bare >= ${minimum}:** ` +
    `\`enableCompression: false\` ${verdict(ratios[2])} it (${formatRatio(ratios[2])}); the default configuration ` +
    `${verdict(ratios[1])} it (${formatRatio(ratios[1])}): ${why}. Where speed matters more than ciphertext size, ` +
    'or for data that does not compress, turn compression off globally or per call (`compress: false`).'
  );
}

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
