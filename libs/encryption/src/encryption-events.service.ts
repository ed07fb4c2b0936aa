import { Injectable, Logger } from '@nestjs/common';

import type { EncryptionEvent, EncryptionEventListener } from './interfaces/encryption-event.interface.js';

/**
 * A small in-process hook for metrics, audit and tests: subscribe to what the services do. With no
 * subscriber the services skip building events entirely, so an unobserved hot path pays nothing.
 */
@Injectable()
export class EncryptionEvents {
  private readonly logger = new Logger(EncryptionEvents.name);
  private readonly listeners = new Set<EncryptionEventListener>();

  get observed(): boolean {
    return this.listeners.size > 0;
  }

  /** Returns the function that unsubscribes. */
  subscribe(listener: EncryptionEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: EncryptionEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // A broken listener must never break encryption.
        this.logger.warn(`An encryption event listener threw on a ${event.type} event: ${(error as Error).message}`);
      }
    }
  }
}
