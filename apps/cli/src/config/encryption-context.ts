import type { DynamicModule, LoggerService } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { EncryptionModuleOptions, KeyStore } from 'nestjs-encryption';
import { EncryptionModule, EncryptionService, KeyManagerService, KeyStoreUnavailableError } from 'nestjs-encryption';

import { CliError, EXIT } from '../cli.errors.js';

/** The library's services, booted exactly as an application boots them. */
export interface EncryptionServices {
  keys: KeyManagerService;
  encryption: EncryptionService;
}

@Module({})
class CliModule {
  static register(options: () => Promise<EncryptionModuleOptions> | EncryptionModuleOptions): DynamicModule {
    return { module: CliModule, imports: [EncryptionModule.forRootAsync({ useFactory: options })] };
  }
}

/** Nest's console logger writes to stdout, which belongs to the command's output (`--json`). */
class StderrLogger implements LoggerService {
  constructor(private readonly stderr: NodeJS.WritableStream) {}
  log(message: unknown, context?: string) {
    this.write('LOG', message, context);
  }
  error(message: unknown, _trace?: string, context?: string) {
    this.write('ERROR', message, context);
  }
  warn(message: unknown, context?: string) {
    this.write('WARN', message, context);
  }
  debug(message: unknown, context?: string) {
    this.write('DEBUG', message, context);
  }
  private write(level: string, message: unknown, context?: string) {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    this.stderr.write(`[nest] ${level} ${context ? `[${context}] ` : ''}${text}\n`);
  }
}

export interface BootOptions {
  keyStore: KeyStore;
  /** For messages: where the store is, without credentials. */
  location: string;
  options: EncryptionModuleOptions;
  /** Nest and audit logs to stderr. */
  verbose: boolean;
  stderr: NodeJS.WritableStream;
}

/**
 * Boots `EncryptionModule.forRootAsync` in a Nest application context, runs `work`, and closes the
 * context (flushing usage counters and closing the store) whatever happens.
 */
export async function withEncryption<T>(
  boot: BootOptions,
  work: (services: EncryptionServices) => Promise<T>,
): Promise<T> {
  let app;
  try {
    app = await NestFactory.createApplicationContext(
      CliModule.register(() => boot.options),
      {
        logger: boot.verbose ? new StderrLogger(boot.stderr) : false,
        abortOnError: false,
      },
    );
  } catch (error) {
    await boot.keyStore.close?.().catch(() => undefined);
    if (error instanceof KeyStoreUnavailableError) {
      const cause = error.cause as NodeJS.ErrnoException | undefined;
      const code =
        cause?.code ?? (cause instanceof AggregateError ? (cause.errors[0] as NodeJS.ErrnoException)?.code : undefined);
      throw new CliError(
        EXIT.UNAVAILABLE,
        'KEY_STORE_UNAVAILABLE',
        `The key store (${boot.location}) can't be reached${code ? ` (${code})` : ''}`,
        { cause: error },
      );
    }
    throw error;
  }
  try {
    return await work({ keys: app.get(KeyManagerService), encryption: app.get(EncryptionService) });
  } finally {
    await app.close();
  }
}
