import type { Provider } from '@nestjs/common';
import { makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { Gauge } from 'prom-client';

import { ENCRYPTION_OPTIONS } from '../encryption.constants.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import { KeyManagerService } from '../key-manager.service.js';
import { ENCRYPTION_METRICS } from './encryption-metrics.constants.js';

// Encryption of small values takes microseconds; large compressed bodies take tens of milliseconds.
const DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/** Reads the active key at scrape time; before the ring is loaded the gauge has no value to show. */
function activeKeyGauge(read: (keyManager: KeyManagerService, options: ResolvedEncryptionOptions) => number) {
  return function collect(this: Gauge<string>, keyManager: KeyManagerService, options: ResolvedEncryptionOptions): void {
    let value: number;
    try {
      value = read(keyManager, options);
    } catch {
      this.reset();
      return;
    }
    this.set(value);
  };
}

/** Every metric, declared once. */
export const ENCRYPTION_METRIC_PROVIDERS: Provider[] = [
  makeCounterProvider({
    name: ENCRYPTION_METRICS.OPERATIONS,
    help: 'Encrypt and decrypt calls by operation, algorithm and result.',
    labelNames: ['operation', 'algorithm', 'result'],
  }),
  makeHistogramProvider({
    name: ENCRYPTION_METRICS.OPERATION_DURATION,
    help: 'Duration of encrypt and decrypt calls in seconds.',
    labelNames: ['operation', 'result'],
    buckets: DURATION_BUCKETS,
  }),
  makeCounterProvider({
    name: ENCRYPTION_METRICS.PLAINTEXT_BYTES,
    help: 'Plaintext bytes (encoded, before compression) of successful calls, by operation.',
    labelNames: ['operation'],
  }),
  makeCounterProvider({
    name: ENCRYPTION_METRICS.CIPHERTEXT_BYTES,
    help: 'Ciphertext envelope bytes of successful calls, by operation.',
    labelNames: ['operation'],
  }),
  makeHistogramProvider({
    name: ENCRYPTION_METRICS.COMPRESSION_RATIO,
    help: 'Compressed size divided by original size of compressed payloads, by operation.',
    labelNames: ['operation'],
    buckets: RATIO_BUCKETS,
  }),
  makeGaugeProvider({
    name: ENCRYPTION_METRICS.ACTIVE_KEY_AGE,
    help: 'Age of the active data key in seconds.',
    inject: [KeyManagerService, ENCRYPTION_OPTIONS],
    collect: activeKeyGauge(
      (keyManager, options) => (options.clock.now() - keyManager.activeKey.createdAt.getTime()) / 1000,
    ),
  }),
  makeGaugeProvider({
    name: ENCRYPTION_METRICS.ACTIVE_KEY_VERSION,
    help: 'Version of the active data key.',
    inject: [KeyManagerService, ENCRYPTION_OPTIONS],
    collect: activeKeyGauge((keyManager) => keyManager.activeKey.version),
  }),
  makeCounterProvider({
    name: ENCRYPTION_METRICS.KEY_ROTATIONS,
    help: 'Rotations of the active data key made by this process.',
  }),
  makeCounterProvider({
    name: ENCRYPTION_METRICS.KEY_FALLBACK_DECRYPTIONS,
    help: "Decryptions whose explicit key didn't match the ciphertext, so the key ring was used by key id.",
  }),
  makeCounterProvider({
    name: ENCRYPTION_METRICS.REJECTED_REQUESTS,
    help: "HTTP requests refused because an encrypted field or body couldn't be decrypted, by error code.",
    labelNames: ['reason'],
  }),
];
