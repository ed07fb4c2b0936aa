/** Every metric name starts with this; names are snake_case with a unit suffix. */
export const ENCRYPTION_METRIC_PREFIX = 'nestjs_encryption';

/** Names of the metrics `EncryptionMetricsModule` registers, for `@InjectMetric()` and dashboards. */
export const ENCRYPTION_METRICS = {
  /** Counter: `encrypt`/`decrypt` calls. Labels: `operation`, `algorithm`, `result` (`success`/`failure`). */
  OPERATIONS: `${ENCRYPTION_METRIC_PREFIX}_operations_total`,
  /** Histogram: call duration in seconds. Labels: `operation`, `result`. */
  OPERATION_DURATION: `${ENCRYPTION_METRIC_PREFIX}_operation_duration_seconds`,
  /** Counter: encoded plaintext bytes (before compression) of successful calls. Label: `operation`. */
  PLAINTEXT_BYTES: `${ENCRYPTION_METRIC_PREFIX}_plaintext_bytes_total`,
  /** Counter: envelope bytes of successful calls. Label: `operation`. */
  CIPHERTEXT_BYTES: `${ENCRYPTION_METRIC_PREFIX}_ciphertext_bytes_total`,
  /** Histogram: compressed size / original size of compressed payloads. Label: `operation`. */
  COMPRESSION_RATIO: `${ENCRYPTION_METRIC_PREFIX}_compression_ratio`,
  /** Gauge: age of the active key in seconds, computed at scrape time. */
  ACTIVE_KEY_AGE: `${ENCRYPTION_METRIC_PREFIX}_active_key_age_seconds`,
  /** Gauge: version of the active key, computed at scrape time. */
  ACTIVE_KEY_VERSION: `${ENCRYPTION_METRIC_PREFIX}_active_key_version`,
  /** Counter: rotations of the active key made by this process. */
  KEY_ROTATIONS: `${ENCRYPTION_METRIC_PREFIX}_key_rotations_total`,
  /** Counter: decryptions whose explicit key didn't match, so the ring's key by id was tried. */
  KEY_FALLBACK_DECRYPTIONS: `${ENCRYPTION_METRIC_PREFIX}_key_fallback_decryptions_total`,
  /** Counter: HTTP requests refused because an encrypted field or body didn't decrypt. Label: `reason`. */
  REJECTED_REQUESTS: `${ENCRYPTION_METRIC_PREFIX}_rejected_requests_total`,
} as const;
