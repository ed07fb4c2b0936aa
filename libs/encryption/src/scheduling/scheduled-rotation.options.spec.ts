import type { EncryptionClock, EncryptionModuleOptions } from 'nestjs-encryption';
import { EncryptionConfigError, resolveEncryptionOptions } from 'nestjs-encryption';

describe('scheduledRotation and clock options', () => {
  it('defaults to enabled, one check a minute, on the system clock', () => {
    const resolved = resolveEncryptionOptions();
    expect(resolved.scheduledRotation).toEqual({ enabled: true, checkIntervalMs: 60_000 });
    const before = Date.now();
    const now = resolved.clock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('fills the fields a partial scheduledRotation leaves out', () => {
    expect(resolveEncryptionOptions({ scheduledRotation: { enabled: false } }).scheduledRotation).toEqual({
      enabled: false,
      checkIntervalMs: 60_000,
    });
    expect(
      resolveEncryptionOptions({ scheduledRotation: { checkIntervalMs: 500, enabled: undefined } }).scheduledRotation,
    ).toEqual({ enabled: true, checkIntervalMs: 500 });
  });

  it('uses the given clock', () => {
    const clock: EncryptionClock = { now: () => 42 };
    expect(resolveEncryptionOptions({ clock }).clock).toBe(clock);
  });

  it.each([
    [{ scheduledRotation: { checkIntervalMs: 0 } }, 'scheduledRotation.checkIntervalMs must be a positive number'],
    [{ scheduledRotation: { checkIntervalMs: 1.5 } }, 'scheduledRotation.checkIntervalMs must be an integer number'],
    [{ scheduledRotation: { checkIntervalMs: 2 ** 31 } }, 'scheduledRotation.checkIntervalMs must not be greater than 2147483647'],
    [{ scheduledRotation: { enabled: 'yes' } }, 'scheduledRotation.enabled must be a boolean value'],
    [{ scheduledRotation: { everyMs: 5 } }, 'scheduledRotation.everyMs is not an option'],
    [{ scheduledRotation: 'hourly' }, 'nested property scheduledRotation must be either object or array'],
    [{ clock: { now: 5 } }, 'clock must have a now() method returning epoch milliseconds'],
    [{ clock: null }, 'clock must have a now() method returning epoch milliseconds'],
  ])('rejects %j', (options, problem) => {
    const attempt = () => resolveEncryptionOptions(options as unknown as EncryptionModuleOptions);
    expect(attempt).toThrow(EncryptionConfigError);
    expect(attempt).toThrow(problem);
  });
});
