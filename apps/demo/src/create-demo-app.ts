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
      ? await NestFactory.create(AppModule.register(config), fastifyAdapter(), options)
      : await NestFactory.create(AppModule.register(config), options);
  app.enableShutdownHooks();
  await app.init();
  if (config.adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}

/** Fastify parses no octet-stream bodies by default: pass them through as the raw stream, for `POST /files`. */
function fastifyAdapter(): FastifyAdapter {
  const adapter = new FastifyAdapter();
  adapter.getInstance().addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  return adapter;
}
