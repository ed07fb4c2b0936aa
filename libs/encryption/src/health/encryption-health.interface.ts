/** Per-check options of `EncryptionHealthIndicator.isHealthy()`. */
export interface EncryptionHealthCheckOptions {
  /**
   * How far past `keyRotationInterval` the active key may age before the check is down: overdue
   * within this period is still up (with `rotationDue: true`), beyond it rotation is not happening.
   * @default the larger of a tenth of `keyRotationInterval` and two `scheduledRotation.checkIntervalMs`
   */
  gracePeriodMs?: number;
  /** Milliseconds to wait for the key store before reporting it unreachable. @default 3000 */
  storeTimeoutMs?: number;
}
