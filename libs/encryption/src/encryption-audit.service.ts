import { Injectable, Logger } from '@nestjs/common';

import { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
import { EncryptionEvents } from './encryption-events.service.js';
import type { AuditAction, AuditEvent } from './interfaces/encryption-event.interface.js';
import type { ResolvedEncryptionOptions } from './interfaces/encryption-module-options.interface.js';

const WARNINGS: ReadonlySet<AuditAction> = new Set(['store-error', 'decryption-failures-burst', 'key-destroyed']);

/**
 * Writes audit records through the Nest logger and `EncryptionEvents` (type `audit`). Records carry
 * ids, counts and error codes only. Also watches for bursts of failed decryptions, which usually
 * mean probing or a misconfigured client.
 */
@Injectable()
export class EncryptionAuditor {
  private readonly logger = new Logger('EncryptionAudit');
  /** Tumbling window: constant memory however many failures arrive. */
  private windowStart = 0;
  private failuresInWindow = 0;
  private reportedInWindow = false;

  constructor(
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
    private readonly events: EncryptionEvents,
  ) {}

  get instanceId(): string {
    return this.options.instanceId;
  }

  record(action: AuditAction, keyId?: string, details?: AuditEvent['details']): void {
    const event: AuditEvent = { type: 'audit', action, keyId, instanceId: this.instanceId, at: new Date().toISOString(), details };
    const line = JSON.stringify({ audit: action, keyId, instanceId: this.instanceId, ...details });
    if (WARNINGS.has(action)) this.logger.warn(line);
    else this.logger.log(line);
    this.events.emit(event);
  }

  /** Called on every failed decryption; reports once per window when the count crosses the threshold. */
  decryptionFailed(now = Date.now()): void {
    const { threshold, windowMs } = this.options.decryptionFailureBurst;
    if (now - this.windowStart >= windowMs) {
      this.windowStart = now;
      this.failuresInWindow = 0;
      this.reportedInWindow = false;
    }
    this.failuresInWindow++;
    if (this.failuresInWindow >= threshold && !this.reportedInWindow) {
      this.reportedInWindow = true;
      this.record('decryption-failures-burst', undefined, { failures: this.failuresInWindow, windowMs });
    }
  }
}
