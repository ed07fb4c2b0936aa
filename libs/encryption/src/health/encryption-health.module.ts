import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { EncryptionHealthIndicator } from './encryption.health.js';

/**
 * Provides `EncryptionHealthIndicator` for a Terminus health controller. Needs
 * `EncryptionModule.forRoot({ isGlobal: true, ... })`; without a global module, list
 * `EncryptionHealthIndicator` in the providers of a module that imports both `EncryptionModule`
 * and `TerminusModule` instead.
 */
@Module({
  imports: [TerminusModule],
  providers: [EncryptionHealthIndicator],
  exports: [EncryptionHealthIndicator],
})
export class EncryptionHealthModule {}
