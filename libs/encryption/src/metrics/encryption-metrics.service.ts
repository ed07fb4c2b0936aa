import type { OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Histogram } from 'prom-client';

import { EncryptionEvents } from '../encryption-events.service.js';
import type {
  EncryptionBatchEvent,
  EncryptionEvent,
  EncryptionOperationEvent,
  RequestRejectedEvent,
} from '../interfaces/encryption-event.interface.js';
import { ENCRYPTION_METRICS } from './encryption-metrics.constants.js';

/** Error codes are UPPER_SNAKE constants; anything else is folded so a label can't carry data. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const ALGORITHM = /^[A-Za-z0-9-]{1,32}$/;

/**
 * Turns `EncryptionEvents` into Prometheus metrics. Labels only ever hold operation names,
 * algorithm names, results and error codes: never plaintext, field values or key material.
 */
@Injectable()
export class EncryptionMetricsService implements OnModuleInit, OnModuleDestroy {
  private unsubscribe?: () => void;

  constructor(
    private readonly events: EncryptionEvents,
    @InjectMetric(ENCRYPTION_METRICS.OPERATIONS) private readonly operations: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.OPERATION_DURATION) private readonly duration: Histogram<string>,
    @InjectMetric(ENCRYPTION_METRICS.PLAINTEXT_BYTES) private readonly plaintextBytes: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.CIPHERTEXT_BYTES) private readonly ciphertextBytes: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.COMPRESSION_RATIO) private readonly compressionRatio: Histogram<string>,
    @InjectMetric(ENCRYPTION_METRICS.KEY_ROTATIONS) private readonly rotations: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.KEY_FALLBACK_DECRYPTIONS) private readonly keyFallbacks: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.REJECTED_REQUESTS) private readonly rejectedRequests: Counter<string>,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.events.subscribe((event) => this.record(event));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  protected record(event: EncryptionEvent): void {
    switch (event.type) {
      case 'operation':
        return this.recordOperation(event);
      case 'batch':
        return this.recordBatch(event);
      case 'key-rotated':
        return this.rotations.inc();
      case 'request-rejected':
        return this.recordRejection(event);
    }
  }

  private recordOperation(event: EncryptionOperationEvent): void {
    const { operation, result } = event;
    const algorithm = ALGORITHM.test(event.algorithm) ? event.algorithm : 'unknown';
    this.operations.inc({ operation, algorithm, result });
    this.duration.observe({ operation, result }, event.durationSeconds);
    if (event.keyFallback) this.keyFallbacks.inc();
    if (result !== 'success') return;
    if (event.plaintextBytes !== undefined) this.plaintextBytes.inc({ operation }, event.plaintextBytes);
    if (event.ciphertextBytes !== undefined) this.ciphertextBytes.inc({ operation }, event.ciphertextBytes);
    if (event.compressionRatio !== undefined) this.compressionRatio.observe({ operation }, event.compressionRatio);
  }

  /**
   * A batch counts each item as an operation, with its bytes. The duration histogram is per call, so a
   * batch (one call, many items) is left out of it rather than skew it.
   */
  private recordBatch(event: EncryptionBatchEvent): void {
    const { operation } = event;
    const algorithm = ALGORITHM.test(event.algorithm) ? event.algorithm : 'unknown';
    if (event.succeeded) this.operations.inc({ operation, algorithm, result: 'success' }, event.succeeded);
    if (event.failed) this.operations.inc({ operation, algorithm, result: 'failure' }, event.failed);
    if (event.plaintextBytes) this.plaintextBytes.inc({ operation }, event.plaintextBytes);
    if (event.ciphertextBytes) this.ciphertextBytes.inc({ operation }, event.ciphertextBytes);
  }

  private recordRejection(event: RequestRejectedEvent): void {
    // The field path is left out: it is unbounded and user-chosen.
    this.rejectedRequests.inc({ reason: ERROR_CODE.test(event.reason) ? event.reason : 'OTHER' });
  }
}
