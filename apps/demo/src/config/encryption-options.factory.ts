import { Logger } from '@nestjs/common';
import type { EncryptionModuleOptions } from 'nestjs-encryption';

import type { DemoConfig } from './demo.config.js';
import { loadOrCreateDevMasterKey } from './dev-master-key.js';
import { createKeyStore } from './key-store.factory.js';

/** Options for `EncryptionModule.forRootAsync`, from the demo's configuration. */
export async function createEncryptionOptions(config: DemoConfig): Promise<EncryptionModuleOptions> {
  const logger = new Logger('DemoConfig');
  const { masterKeyPassphrase } = config;
  let { masterKey } = config;
  if (!masterKey && !masterKeyPassphrase && config.keyStore !== 'memory') {
    if (config.production) {
      throw new Error('NODE_ENV=production needs MASTER_KEY (32 bytes, base64) or MASTER_KEY_PASSPHRASE');
    }
    masterKey = loadOrCreateDevMasterKey(config.devMasterKeyPath, logger);
  }
  return {
    masterKey,
    masterKeyPassphrase,
    keyStore: await createKeyStore(config),
    keyRotationInterval: config.keyRotationInterval,
    keyRetention: config.keyRetentionMaxPreviousKeys === undefined ? undefined : { maxPreviousKeys: config.keyRetentionMaxPreviousKeys },
    scheduledRotation: config.rotationCheckIntervalMs ? { checkIntervalMs: config.rotationCheckIntervalMs } : undefined,
    workerPool: { size: config.workerPoolSize, threshold: config.workerPoolThreshold },
  };
}
