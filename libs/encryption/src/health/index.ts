/**
 * `nestjs-encryption/health`: a Terminus health indicator. Needs the optional peer `@nestjs/terminus`;
 * kept out of the main entry point so that apps without it can still import `nestjs-encryption`.
 */
export { EncryptionHealthModule } from './encryption-health.module.js';
export { EncryptionHealthIndicator } from './encryption.health.js';
export type { EncryptionHealthCheckOptions } from './encryption-health.interface.js';
