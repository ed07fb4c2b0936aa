import { createHash, timingSafeEqual } from 'node:crypto';

import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';

import type { DemoConfig } from '../config/demo.config.js';
import { DEMO_CONFIG } from '../config/demo.config.js';

/** Admin endpoints need `Authorization: Bearer <DEMO_ADMIN_TOKEN>`. */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(DEMO_CONFIG) config: DemoConfig) {
    this.expected = digest(config.adminToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
    // Compare digests so the comparison is constant-time whatever the token's length.
    if (!timingSafeEqual(digest(token), this.expected)) throw new UnauthorizedException('A valid admin token is required');
    return true;
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();
