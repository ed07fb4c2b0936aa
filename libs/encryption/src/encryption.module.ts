import type { DynamicModule } from '@nestjs/common';
import { Module } from '@nestjs/common';

import { resolveEncryptionOptions } from './config/resolve-encryption-options.js';
import { ENCRYPTION_OPTIONS } from './encryption.constants.js';
import { ConfigurableModuleClass, OPTIONS_TYPE, RAW_ENCRYPTION_OPTIONS } from './encryption.module-definition.js';
import { EncryptionService } from './encryption.service.js';
import { EncryptionAuditor } from './encryption-audit.service.js';
import { EncryptionEvents } from './encryption-events.service.js';
import { FieldEncryptionService } from './field-encryption/field-encryption.service.js';
import { EncryptionInterceptor } from './interceptors/encryption.interceptor.js';
import { KeyManagerService } from './key-manager.service.js';
import { CryptoWorkerPool } from './parallel/crypto-worker-pool.js';

/**
 * `EncryptionModule.forRoot(options)` or `forRootAsync({ imports, inject, useFactory })`; add
 * `isGlobal: true` to make the services injectable everywhere. Options are validated at boot.
 */
@Module({
  providers: [
    { provide: ENCRYPTION_OPTIONS, useFactory: resolveEncryptionOptions, inject: [RAW_ENCRYPTION_OPTIONS] },
    EncryptionEvents,
    EncryptionAuditor,
    KeyManagerService,
    CryptoWorkerPool,
    EncryptionService,
    FieldEncryptionService,
    EncryptionInterceptor,
  ],
  exports: [ENCRYPTION_OPTIONS, EncryptionEvents, KeyManagerService, EncryptionService, FieldEncryptionService, EncryptionInterceptor],
})
export class EncryptionModule extends ConfigurableModuleClass {
  /** Every option has a default, so `forRoot()` alone gives a working module. */
  static forRoot(options: typeof OPTIONS_TYPE = {}): DynamicModule {
    return super.forRoot(options);
  }
}
