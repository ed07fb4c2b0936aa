import { Module } from '@nestjs/common';

import { ENCRYPTION_METRIC_PROVIDERS } from './encryption-metrics.providers.js';
import { EncryptionMetricsService } from './encryption-metrics.service.js';

/**
 * Prometheus metrics for encryption (names in `ENCRYPTION_METRICS`). Import it next to
 * `PrometheusModule.register()` and an `EncryptionModule.forRoot({ isGlobal: true, ... })`; the
 * metrics land in prom-client's default registry and are served by PrometheusModule's `/metrics`.
 * Without a global `EncryptionModule`, list `...ENCRYPTION_METRIC_PROVIDERS, EncryptionMetricsService`
 * in the providers of a module that imports it instead.
 */
@Module({
  providers: [...ENCRYPTION_METRIC_PROVIDERS, EncryptionMetricsService],
  exports: [...ENCRYPTION_METRIC_PROVIDERS, EncryptionMetricsService],
})
export class EncryptionMetricsModule {}
