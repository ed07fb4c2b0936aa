import { Controller, Get, Header } from '@nestjs/common';
import type { JSONWebKeySet } from 'jose';
import { KeyManagerService } from 'nestjs-encryption';

/**
 * The ring's public keys (RFC 7517), active first, then decrypt-only ones: what a client encrypts
 * `@EncryptedBody()` submissions to as compact JWE. Public members only.
 */
@Controller('.well-known')
export class JwksController {
  constructor(private readonly keys: KeyManagerService) {}

  @Get('jwks.json')
  // Clients may cache it; one that meets an unknown key refetches (see apps/demo/web/main.ts).
  @Header('Cache-Control', 'public, max-age=300')
  jwks(): JSONWebKeySet {
    return this.keys.publicJwks();
  }
}
