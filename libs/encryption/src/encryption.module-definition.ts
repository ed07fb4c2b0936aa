import { ConfigurableModuleBuilder } from '@nestjs/common';

import type { EncryptionModuleOptions } from './interfaces/encryption-module-options.interface.js';

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: RAW_ENCRYPTION_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<EncryptionModuleOptions>({ moduleName: 'Encryption' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createEncryptionOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
