import { Controller, Get, HttpCode, Post, UseGuards } from '@nestjs/common';
import type { KeyMetadata } from 'nestjs-encryption';
import { KeyManagerService } from 'nestjs-encryption';

import { AdminTokenGuard } from './admin-token.guard.js';

@Controller('admin/keys')
@UseGuards(AdminTokenGuard)
export class AdminController {
  constructor(private readonly keys: KeyManagerService) {}

  /** Key metadata: ids, states, ages, usage. Never key bytes. */
  @Get()
  list(): KeyMetadata[] {
    return this.keys.listKeys();
  }

  /** Rotates now; older records stay readable with the previous keys. */
  @Post('rotate')
  @HttpCode(200)
  async rotate(): Promise<{ active: KeyMetadata }> {
    return { active: await this.keys.rotate() };
  }
}
