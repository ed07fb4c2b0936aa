import { Controller, Get } from '@nestjs/common';
import type { HealthCheckResult } from '@nestjs/terminus';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { EncryptionHealthIndicator } from 'nestjs-encryption/health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly encryption: EncryptionHealthIndicator,
  ) {}

  /** 200 when encryption works, the active key is fresh and the key store answers; 503 otherwise. */
  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.encryption.isHealthy('encryption')]);
  }
}
