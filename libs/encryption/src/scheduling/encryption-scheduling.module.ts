import { Module } from '@nestjs/common';

import { KeyRotationScheduler } from './key-rotation.scheduler.js';

/**
 * Scheduled key rotation. Import it next to `ScheduleModule.forRoot()` and an
 * `EncryptionModule.forRoot({ isGlobal: true, ... })`; configure it with the `scheduledRotation`
 * and `keyRotationInterval` options of `EncryptionModule`. Without a global `EncryptionModule`, list
 * `KeyRotationScheduler` in the providers of a module that imports it instead.
 */
@Module({
  providers: [KeyRotationScheduler],
  exports: [KeyRotationScheduler],
})
export class EncryptionSchedulingModule {}
