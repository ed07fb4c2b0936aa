import type { OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Injectable, Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';

import { InjectEncryptionOptions } from '../decorators/inject-encryption-options.decorator.js';
import { EncryptionError } from '../errors/encryption.errors.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { KeyMetadata } from '../interfaces/key-metadata.interface.js';
import { KeyManagerService } from '../key-manager.service.js';
import { KEY_ROTATION_INTERVAL_NAME } from './key-rotation.constants.js';

/**
 * Rotates the active key once it is `keyRotationInterval` old, checking every
 * `scheduledRotation.checkIntervalMs`. Age is measured from the key's stored `createdAt`, so a
 * restart doesn't postpone a rotation; a key found stale at boot is rotated right after bootstrap.
 */
@Injectable()
export class KeyRotationScheduler implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(KeyRotationScheduler.name);
  private running?: Promise<KeyMetadata | undefined>;

  constructor(
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
    private readonly keyManager: KeyManagerService,
    private readonly schedulerRegistry: SchedulerRegistry,
  ) {}

  onModuleInit(): void {
    const { enabled, checkIntervalMs } = this.options.scheduledRotation;
    if (!enabled) return;
    const interval = setInterval(() => void this.checkRotation(), checkIntervalMs);
    this.schedulerRegistry.addInterval(KEY_ROTATION_INTERVAL_NAME, interval);
  }

  /** First check right away, without holding up the boot: a rotation may wait for other instances. */
  onApplicationBootstrap(): void {
    if (this.options.scheduledRotation.enabled) void this.checkRotation();
  }

  onModuleDestroy(): void {
    if (this.schedulerRegistry.doesExist('interval', KEY_ROTATION_INTERVAL_NAME)) {
      this.schedulerRegistry.deleteInterval(KEY_ROTATION_INTERVAL_NAME);
    }
  }

  /** Milliseconds until the active key is due for rotation; 0 or less when it is due now. */
  millisecondsUntilRotation(): number {
    const age = this.options.clock.now() - this.keyManager.activeKey.createdAt.getTime();
    return this.options.keyRotationInterval - age;
  }

  /**
   * One check: rotates when the active key is due and resolves the new key's metadata, or
   * `undefined` when nothing was due or the rotation failed (logged, retried at the next check).
   * Overlapping calls share the check in progress.
   */
  checkRotation(): Promise<KeyMetadata | undefined> {
    this.running ??= this.rotateIfDue().finally(() => (this.running = undefined));
    return this.running;
  }

  private async rotateIfDue(): Promise<KeyMetadata | undefined> {
    try {
      // Cheap local look first; rotateIfDue reloads the store's ring and checks again, so instances
      // sharing a store make one rotation between them.
      if (this.millisecondsUntilRotation() > 0) return undefined;
      const key = await this.keyManager.rotateIfDue(this.options.keyRotationInterval);
      if (key) this.logger.log(`Rotated the active encryption key: now ${key.id} (version ${key.version})`);
      return key;
    } catch (error) {
      this.logger.error(
        `Scheduled key rotation failed, retrying in ${this.options.scheduledRotation.checkIntervalMs} ms: ${describe(error)}`,
      );
      return undefined;
    }
  }
}

/** Error name, code and message. Stores only ever see wrapped keys, so no key bytes can be in it. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'non-error value thrown';
  const code = error instanceof EncryptionError ? ` [${error.code}]` : '';
  return `${error.name}${code}: ${error.message}`;
}
