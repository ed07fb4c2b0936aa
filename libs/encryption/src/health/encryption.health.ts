import { Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { HealthIndicatorService } from '@nestjs/terminus';

import { InjectEncryptionOptions } from '../decorators/inject-encryption-options.decorator.js';
import { EncryptionService } from '../encryption.service.js';
import { EncryptionError } from '../errors/encryption.errors.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import { KeyManagerService } from '../key-manager.service.js';
import type { EncryptionHealthCheckOptions } from './encryption-health.interface.js';

/** Fixed and not secret; bound to its own context so a probe ciphertext is useless anywhere else. */
const PROBE = 'nestjs-encryption health probe';
const PROBE_CONTEXT = 'nestjs-encryption:health-probe';
const DEFAULT_STORE_TIMEOUT_MS = 3000;

const REASONS = {
  RING_NOT_LOADED: 'The key ring is not loaded',
  SELF_TEST_FAILED: (code: string) => `The encryption self-test failed (${code})`,
  SELF_TEST_MISMATCH: 'The encryption self-test decrypted to different data',
  KEY_STALE: (ageMs: number, intervalMs: number, graceMs: number) =>
    `The active key is ${ageMs} ms old, past keyRotationInterval (${intervalMs} ms) plus the ${graceMs} ms grace period: keys are not being rotated`,
  STORE_UNREACHABLE: 'The key store is unreachable',
  STORE_TIMEOUT: (ms: number) => `The key store did not answer within ${ms} ms`,
  STORE_EMPTY: 'The key store holds no key ring',
} as const;

const TIMED_OUT = Symbol('timed out');

/**
 * Terminus health indicator: a round trip through `EncryptionService` with the active key, the
 * active key's age against `keyRotationInterval`, and the key store's reachability. Details carry the
 * key's id, version and age; never key bytes, and never the probe's plaintext.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.encryption.isHealthy('encryption')]); }
 * ```
 */
@Injectable()
export class EncryptionHealthIndicator {
  constructor(
    private readonly healthIndicatorService: HealthIndicatorService,
    private readonly encryption: EncryptionService,
    private readonly keyManager: KeyManagerService,
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
  ) {}

  async isHealthy<const Key extends string = 'encryption'>(
    key: Key = 'encryption' as Key,
    {
      gracePeriodMs = this.defaultGracePeriod(),
      storeTimeoutMs = DEFAULT_STORE_TIMEOUT_MS,
    }: EncryptionHealthCheckOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.healthIndicatorService.check(key);
    let active;
    try {
      active = this.keyManager.activeKey;
    } catch {
      return indicator.down({ reason: REASONS.RING_NOT_LOADED });
    }

    const intervalMs = this.options.keyRotationInterval;
    const ageMs = this.options.clock.now() - active.createdAt.getTime();
    const details = {
      keyId: active.id,
      keyVersion: active.version,
      keyCreatedAt: active.createdAt.toISOString(),
      keyAgeMs: ageMs,
      keyRotationIntervalMs: intervalMs,
      rotationDue: ageMs >= intervalMs,
    };

    const [selfTestProblem, storeProblem, fleet] = await Promise.all([
      this.selfTest(),
      this.checkStore(storeTimeoutMs),
      this.fleet(storeTimeoutMs),
    ]);
    const problems = [
      selfTestProblem,
      ageMs > intervalMs + gracePeriodMs ? REASONS.KEY_STALE(ageMs, intervalMs, gracePeriodMs) : undefined,
      storeProblem,
    ].filter((problem) => problem !== undefined);

    const all = { ...details, ...fleet };
    return problems.length ? indicator.down({ ...all, reason: problems.join('; ') }) : indicator.up(all);
  }

  /**
   * Instances sharing the store that hold another ring revision than this one. Briefly normal during
   * a rotation; lasting disagreement means an instance can't load the store's keys. Reported, not down.
   */
  private async fleet(timeoutMs: number): Promise<Record<string, unknown>> {
    if (!this.options.keyStore.instances) return {};
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      const status = await Promise.race([this.keyManager.fleetStatus().catch(() => undefined), timeout]);
      if (!status?.instances) return {};
      return {
        ringRevision: status.revision,
        liveInstances: status.instances.length,
        disagreeingInstances: status.disagreeing.map(({ instanceId, revision }) => ({ instanceId, revision })),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  private defaultGracePeriod(): number {
    return Math.max(
      Math.floor(this.options.keyRotationInterval / 10),
      2 * this.options.scheduledRotation.checkIntervalMs,
    );
  }

  private async selfTest(): Promise<string | undefined> {
    try {
      // Fernet tokens carry no context and no type: probe them without one, reading the payload as text.
      const context = this.options.algorithm === 'fernet' ? undefined : PROBE_CONTEXT;
      const ciphertext = await this.encryption.encrypt(PROBE, { compress: false, context });
      const decrypted = await this.encryption.decrypt(ciphertext, { context, as: 'string' });
      return decrypted === PROBE ? undefined : REASONS.SELF_TEST_MISMATCH;
    } catch (error) {
      return REASONS.SELF_TEST_FAILED(error instanceof EncryptionError ? error.code : 'INTERNAL');
    }
  }

  /** Uses the store's cheap `ping()` when it has one, otherwise a full `load()`. */
  private async checkStore(timeoutMs: number): Promise<string | undefined> {
    const store = this.options.keyStore;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
    });
    try {
      const outcome = await Promise.race([store.ping ? store.ping().then(() => true as const) : store.load(), timeout]);
      if (outcome === TIMED_OUT) return REASONS.STORE_TIMEOUT(timeoutMs);
      return outcome === undefined ? REASONS.STORE_EMPTY : undefined;
    } catch {
      // The store's own error may name hosts or credentials: the health output stays generic.
      return REASONS.STORE_UNREACHABLE;
    } finally {
      clearTimeout(timer);
    }
  }
}
