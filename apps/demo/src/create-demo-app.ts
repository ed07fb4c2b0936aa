import 'reflect-metadata';

import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';

import { AppModule } from './app.module.js';
import type { DemoConfig } from './config/demo.config.js';

/** Builds the demo on the configured HTTP adapter (Express or Fastify), ready to `listen` or test. */
export async function createDemoApp(config: DemoConfig, logger: false | undefined = undefined): Promise<INestApplication> {
  const options = { logger, abortOnError: false } as const;
  const app =
    config.adapter === 'fastify'
      ? await NestFactory.create(AppModule.register(config), new FastifyAdapter(), options)
      : await NestFactory.create(AppModule.register(config), options);
  app.enableShutdownHooks();
  await app.init();
  if (config.adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}
