/**
 * `nestjs-encryption/scheduling`: scheduled key rotation. Needs the optional peer `@nestjs/schedule`;
 * kept out of the main entry point so that apps without it can still import `nestjs-encryption`.
 */
export { EncryptionSchedulingModule } from './encryption-scheduling.module.js';
export { KeyRotationScheduler } from './key-rotation.scheduler.js';
export { KEY_ROTATION_INTERVAL_NAME } from './key-rotation.constants.js';
