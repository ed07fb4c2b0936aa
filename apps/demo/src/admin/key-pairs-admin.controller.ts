import { Controller, Get, HttpCode, Post, UseGuards } from '@nestjs/common';
import type { KeyPairMetadata } from 'nestjs-encryption';
import { KeyManagerService } from 'nestjs-encryption';

import { AdminTokenGuard } from './admin-token.guard.js';

@Controller('admin/key-pairs')
@UseGuards(AdminTokenGuard)
export class KeyPairsAdminController {
  constructor(private readonly keys: KeyManagerService) {}

  /** Key pair metadata: kids, algorithms, states, ages. Never private keys. */
  @Get()
  list(): KeyPairMetadata[] {
    return this.keys.listKeyPairs();
  }

  /**
   * Makes a new active key pair. The previous one stays in the JWKS as decrypt-only, so JWEs that
   * clients made to it keep working until the retention policy retires it.
   */
  @Post('rotate')
  @HttpCode(200)
  async rotate(): Promise<{ active: KeyPairMetadata }> {
    return { active: await this.keys.rotateKeyPair() };
  }
}
