import 'reflect-metadata';

import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { EncryptionModuleOptions } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService } from 'nestjs-encryption';

export interface EncryptionApp {
  app: INestApplicationContext;
  service: EncryptionService;
}

/** A Nest application context with `EncryptionModule.forRoot(options)`, as an app would boot it. */
export async function createEncryptionApp(options: EncryptionModuleOptions): Promise<EncryptionApp> {
  const app = await NestFactory.createApplicationContext(EncryptionModule.forRoot(options), { logger: false });
  return { app, service: app.get(EncryptionService) };
}

/** Envelope byte 2, bits 2-3 (docs/FORMAT.md): 0 when the payload was stored uncompressed. */
export function envelopeCodec(envelope: Buffer): number {
  return (envelope[2] >> 2) & 0b11;
}
