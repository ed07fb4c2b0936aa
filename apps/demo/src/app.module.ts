import type { DynamicModule } from '@nestjs/common';
import { ClassSerializerInterceptor, Module, ValidationPipe } from '@nestjs/common';
import { APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { EncryptionInterceptor, EncryptionModule } from 'nestjs-encryption';
import { EncryptionHealthModule } from 'nestjs-encryption/health';
import { EncryptionMetricsModule } from 'nestjs-encryption/metrics';
import { EncryptionSchedulingModule } from 'nestjs-encryption/scheduling';

import { AdminController } from './admin/admin.controller.js';
import { AdminTokenGuard } from './admin/admin-token.guard.js';
import { KeyPairsAdminController } from './admin/key-pairs-admin.controller.js';
import type { DemoConfig } from './config/demo.config.js';
import { DEMO_CONFIG } from './config/demo.config.js';
import { createEncryptionOptions } from './config/encryption-options.factory.js';
import { CustomerStorageController } from './customers/customer-storage.controller.js';
import { CustomersController } from './customers/customers.controller.js';
import { CustomersRepository } from './customers/customers.repository.js';
import { EncryptedFilesStore } from './files/encrypted-files.store.js';
import { FilesController } from './files/files.controller.js';
import { HealthController } from './health/health.controller.js';
import { JwksController } from './jwks/jwks.controller.js';
import { WebController } from './web/web.controller.js';

/** The demo API: customers with encrypted personal fields, health, metrics and key administration. */
@Module({})
export class AppModule {
  static register(config: DemoConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        EncryptionModule.forRootAsync({ isGlobal: true, useFactory: () => createEncryptionOptions(config) }),
        ScheduleModule.forRoot(),
        EncryptionSchedulingModule,
        TerminusModule,
        EncryptionHealthModule,
        PrometheusModule.register(),
        EncryptionMetricsModule,
      ],
      controllers: [
        CustomersController,
        CustomerStorageController,
        AdminController,
        KeyPairsAdminController,
        HealthController,
        JwksController,
        WebController,
        FilesController,
      ],
      providers: [
        { provide: DEMO_CONFIG, useValue: config },
        CustomersRepository,
        EncryptedFilesStore,
        AdminTokenGuard,
        { provide: APP_PIPE, useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }) },
        // Order matters: the first is the outer one, so encryption runs while responses are still class instances.
        { provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor },
        { provide: APP_INTERCEPTOR, useExisting: EncryptionInterceptor },
      ],
    };
  }
}
