/**
 * `nestjs-encryption/metrics`: Prometheus metrics. Needs the optional peers `@willsoto/nestjs-prometheus`
 * and `prom-client`; kept out of the main entry point so that apps without them can still import
 * `nestjs-encryption`.
 */
export { EncryptionMetricsModule } from './encryption-metrics.module.js';
export { EncryptionMetricsService } from './encryption-metrics.service.js';
export { ENCRYPTION_METRICS, ENCRYPTION_METRIC_PREFIX } from './encryption-metrics.constants.js';
export { ENCRYPTION_METRIC_PROVIDERS } from './encryption-metrics.providers.js';
