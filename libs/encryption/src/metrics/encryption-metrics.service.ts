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
import { DeferredCounter } from './deferred-counter.js';
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
  // Counted on every operation: added up here and handed to prom-client at scrape time.
  private readonly operationCounts: DeferredCounter<string>;
  private readonly plaintextByteCounts: DeferredCounter<string>;
  private readonly ciphertextByteCounts: DeferredCounter<string>;

  constructor(
    private readonly events: EncryptionEvents,
    @InjectMetric(ENCRYPTION_METRICS.OPERATIONS) operations: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.OPERATION_DURATION) private readonly duration: Histogram<string>,
    @InjectMetric(ENCRYPTION_METRICS.PLAINTEXT_BYTES) plaintextBytes: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.CIPHERTEXT_BYTES) ciphertextBytes: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.COMPRESSION_RATIO) private readonly compressionRatio: Histogram<string>,
    @InjectMetric(ENCRYPTION_METRICS.KEY_ROTATIONS) private readonly rotations: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.KEY_FALLBACK_DECRYPTIONS) private readonly keyFallbacks: Counter<string>,
    @InjectMetric(ENCRYPTION_METRICS.REJECTED_REQUESTS) private readonly rejectedRequests: Counter<string>,
  ) {
    this.operationCounts = new DeferredCounter(operations);
    this.plaintextByteCounts = new DeferredCounter(plaintextBytes);
    this.ciphertextByteCounts = new DeferredCounter(ciphertextBytes);
  }

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
    this.countOperations(operation, algorithm, result, 1);
    this.duration.observe({ operation, result }, event.durationSeconds);
    if (event.keyFallback) this.keyFallbacks.inc();
    if (result !== 'success') return;
    if (event.plaintextBytes !== undefined) this.plaintextByteCounts.inc(operation, { operation }, event.plaintextBytes);
    if (event.ciphertextBytes !== undefined) this.ciphertextByteCounts.inc(operation, { operation }, event.ciphertextBytes);
    if (event.compressionRatio !== undefined) this.compressionRatio.observe({ operation }, event.compressionRatio);
  }

  /**
   * A batch counts each item as an operation, with its bytes. The duration histogram is per call, so a
   * batch (one call, many items) is left out of it rather than skew it.
   */
  private recordBatch(event: EncryptionBatchEvent): void {
    const { operation } = event;
    const algorithm = ALGORITHM.test(event.algorithm) ? event.algorithm : 'unknown';
    if (event.succeeded) this.countOperations(operation, algorithm, 'success', event.succeeded);
    if (event.failed) this.countOperations(operation, algorithm, 'failure', event.failed);
    if (event.plaintextBytes) this.plaintextByteCounts.inc(operation, { operation }, event.plaintextBytes);
    if (event.ciphertextBytes) this.ciphertextByteCounts.inc(operation, { operation }, event.ciphertextBytes);
  }

  private countOperations(operation: string, algorithm: string, result: string, value: number): void {
    this.operationCounts.inc(`${operation} ${algorithm} ${result}`, { operation, algorithm, result }, value);
  }

  private recordRejection(event: RequestRejectedEvent): void {
    // The field path is left out: it is unbounded and user-chosen.
    this.rejectedRequests.inc({ reason: ERROR_CODE.test(event.reason) ? event.reason : 'OTHER' });
  }
}
