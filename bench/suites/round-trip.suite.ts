import { isDeepStrictEqual } from 'node:util';

import type { EncryptionModuleOptions, EncryptionService } from 'nestjs-encryption';
import { DEFAULT_ENCRYPTION_OPTIONS } from 'nestjs-encryption';

import type { EncryptionApp } from '../encryption-app.js';
import { createEncryptionApp, envelopeCodec } from '../encryption-app.js';
import type { Contender } from '../harness.js';
import { measure } from '../harness.js';
import type { Payload } from '../payloads.js';
import { benchmarkPayloads } from '../payloads.js';
import { bareNodeCrypto } from '../peers.js';
import type { Suite, TargetCheck } from '../suite.js';
import { formatMb, formatOps, formatRatio, formatSpread, target } from '../suite.js';

const IV_SIZE = 12;
const TAG_SIZE = 16;

/** Targets from the performance issue: service round trips per second relative to bare node:crypto. */
const TARGETS: Record<string, number> = { '1 KiB JSON': 0.8, '1 MiB random bytes': 0.95 };

/** A configuration of the service to measure; `from` limits it to payloads at least that large. */
interface ServiceConfig {
  label: string;
  options: EncryptionModuleOptions;
  from?: number;
}

const WORKER_THRESHOLD = DEFAULT_ENCRYPTION_OPTIONS.workerPool.threshold;

const CONFIGS: ServiceConfig[] = [
  { label: 'default config', options: {} },
  { label: '`enableCompression: false`', options: { enableCompression: false } },
  // Payloads this large go to the worker pool by default; this shows what the hand-off costs one caller.
  {
    label: '`enableCompression: false, workerPool: { size: 0 }`',
    options: { enableCompression: false, workerPool: { size: 0 } },
    from: WORKER_THRESHOLD,
  },
];

/**
 * `EncryptionService` encrypt+decrypt round trips against the same round trip written by hand with
 * `node:crypto` AES-256-GCM: the default configuration, compression off, and for payloads the worker
 * pool takes, compression off on the calling thread.
 */
export const roundTripSuite: Suite = {
  id: 'round-trip',
  title: 'Round trip: EncryptionService vs bare node:crypto AES-256-GCM',
  async run({ measure: options, log }) {
    const apps: EncryptionApp[] = [];
    const rows: string[][] = [];
    const targets: TargetCheck[] = [];
    const notes: string[] = [];
    try {
      for (const config of CONFIGS) apps.push(await createEncryptionApp(config.options));
      for (const payload of benchmarkPayloads()) {
        log(`round trip: ${payload.name}`);
        const configs = CONFIGS.map((config, index) => ({ ...config, service: apps[index].service })).filter(
          (config) => payload.size >= (config.from ?? 0),
        );
        const contenders: Contender[] = [
          { name: 'node:crypto AES-256-GCM', run: bareRoundTrip(payload), bytesPerOp: payload.size },
        ];
        const envelopes: Buffer[] = [];
        for (const config of configs) {
          contenders.push({
            name: `EncryptionService, ${config.label}`,
            run: await serviceRoundTrip(config.service, payload),
            bytesPerOp: payload.size,
          });
          envelopes.push(await config.service.encrypt(payload.value as never));
        }
        const measured = await measure(contenders, options);
        const ratios = measured.results.map((_, index) => (index === 0 ? 1 : measured.ratio(index, 0, 'cpu')));
        measured.results.forEach((result, index) => {
          const envelope = envelopes[index - 1];
          const size = envelope?.length ?? IV_SIZE + payload.size + TAG_SIZE;
          rows.push([
            index === 0 ? `${payload.name} (${payload.size.toLocaleString('en-US')} B)` : '',
            result.name,
            `${size.toLocaleString('en-US')}${envelope && envelopeCodec(envelope) !== 0 ? ' (gzip)' : ''}`,
            formatOps(result.opsPerSec),
            formatMb(result.mbPerSec),
            formatOps(result.opsPerCpuSec),
            formatSpread(result.spread('cpu')),
            index === 0 ? '1.00' : withRange(ratios[index], measured.ratioRange(index, 0, 'cpu')),
            formatRatio(index === 0 ? 1 : measured.ratio(index, 0, 'wall')),
          ]);
        });
        const minimum = TARGETS[payload.name];
        if (minimum !== undefined) {
          configs.forEach((config, i) =>
            targets.push(
              target(
                `${payload.name}, ${config.label}: service/bare (middle half of rounds ${range(measured.ratioRange(i + 1, 0, 'cpu'))})`,
                ratios[i + 1],
                minimum,
              ),
            ),
          );
          notes.push(
            targetNote(
              payload,
              minimum,
              configs,
              ratios.slice(1),
              envelopes,
              measured.results.slice(1).map((r) => r.opsPerCpuSec),
            ),
          );
        }
      }
    } finally {
      for (const { app } of apps) await app.close();
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
        'The default configuration gzips payloads of at least `compressionThreshold` (1024) bytes when that makes them ' +
          'smaller; *(gzip)* in the ciphertext column marks the payloads it compressed. Payloads of at least ' +
          `\`workerPool.threshold\` (${WORKER_THRESHOLD.toLocaleString('en-US')} bytes) are compressed and sealed, and opened, ` +
          'in a worker thread, off the event loop; for such payloads compression off on the calling thread is measured too, ' +
          'since one caller awaiting one round trip after another pays for the hand-off and gains nothing from it.',
      ],
      tables: [
        {
          headers: [
            'Payload',
            'Contender',
            'ciphertext B',
            'ops/s',
            'MB/s',
            'ops/CPU-s',
            'spread',
            'service/bare (CPU), middle half of rounds',
            'service/bare (wall)',
          ],
          rows,
        },
      ],
      targets,
      notes: [
        ...notes,
        'For small payloads the service can beat the hand-written baseline: it draws nonces from a pooled CSPRNG ' +
          'buffer (one `randomFillSync` per 4 KiB), while the baseline pays a `randomBytes(12)` call per message, ' +
          'which costs about as much as sealing a small message. For large payloads it seals in 64 KiB slices straight ' +
          'into the envelope, while the baseline makes the whole ciphertext in a buffer of its own and then copies it ' +
          'into its output: one more large buffer to allocate and fault in per message.',
      ],
    };
  },
};

function range([low, high]: [number, number]): string {
  return `${formatRatio(low)}–${formatRatio(high)}`;
}

function withRange(ratio: number, quartiles: [number, number]): string {
  return `${formatRatio(ratio)} (${range(quartiles)})`;
}

/** Which configurations meet the target for this payload, and what compression and the worker pool cost. */
function targetNote(
  payload: Payload,
  minimum: number,
  configs: ServiceConfig[],
  ratios: number[],
  envelopes: Buffer[],
  opsPerCpuSec: number[],
): string {
  const cpuMs = (opsPerSec: number) => 1000 / opsPerSec;
  const duration = (ms: number) => (Math.abs(ms) >= 1 ? `${ms.toFixed(1)} ms` : `${Math.round(ms * 1000)} µs`);
  const verdicts = configs.map(
    (config, i) => `${config.label} ${ratios[i] >= minimum ? 'meets' : 'misses'} it (${formatRatio(ratios[i])})`,
  );
  const compressed = envelopeCodec(envelopes[0]) !== 0;
  const compression = compressed
    ? `gzip and gunzip cost about ${duration(cpuMs(opsPerCpuSec[0]) - cpuMs(opsPerCpuSec[1]))} of CPU per round trip ` +
      `for a ${Math.round((1 - envelopes[0].length / envelopes[1].length) * 100)}% smaller ciphertext`
    : `deciding not to compress this payload costs about ${duration(cpuMs(opsPerCpuSec[0]) - cpuMs(opsPerCpuSec[1]))} ` +
      'of CPU per round trip';
  const pool =
    configs.length > 2
      ? `; the worker-pool hand-off costs about ${duration(cpuMs(opsPerCpuSec[1]) - cpuMs(opsPerCpuSec[2]))} of CPU per round trip`
      : '';
  return (
    `**${payload.name} (${payload.size.toLocaleString('en-US')} B), target service/bare >= ${minimum}:** ` +
    `${verdicts.join('; ')}. In the default configuration ${compression}${pool}. Where speed matters more than ` +
    'ciphertext size, or for data that does not compress, turn compression off globally or per call (`compress: false`).'
  );
}

/** The hand-written baseline (bench/peers.ts), checked once. */
function bareRoundTrip(payload: Payload): () => unknown {
  const { roundTrip } = bareNodeCrypto(payload);
  check(payload, roundTrip(), 'node:crypto');
  return roundTrip;
}

async function serviceRoundTrip(service: EncryptionService, payload: Payload): Promise<() => Promise<unknown>> {
  const value = payload.value as never;
  const roundTrip = async () => service.decrypt(await service.encrypt(value));
  check(payload, await roundTrip(), 'EncryptionService');
  return roundTrip;
}

/** A contender that doesn't round-trip correctly would be measuring the wrong thing. */
function check(payload: Payload, output: unknown, who: string): void {
  if (!isDeepStrictEqual(output, payload.value)) throw new Error(`${who} did not round-trip ${payload.name}`);
}
