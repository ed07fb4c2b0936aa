import { randomBytes } from 'node:crypto';

import type { ModuleMetadata } from '@nestjs/common';
import { Inject, Injectable, Module } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';

import { AES_256_CBC_HMAC_SHA256, AES_256_GCM, CHACHA20_POLY1305 } from './crypto/aead.js';
import { parseEnvelope } from './crypto/envelope.js';
import { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
import { ENCRYPTION_OPTIONS } from './encryption.constants.js';
import { EncryptionModule } from './encryption.module.js';
import { EncryptionService } from './encryption.service.js';
import { EncryptionConfigError } from './errors/encryption.errors.js';
import type {
  EncryptionModuleOptions,
  ResolvedEncryptionOptions,
} from './interfaces/encryption-module-options.interface.js';
import { KeyManagerService } from './key-manager.service.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const APP_CONFIG = 'APP_CONFIG';

interface AppConfig {
  algorithm: 'ChaCha20-Poly1305' | 'AES-256-CBC-HMAC-SHA256';
  compressionThreshold: number;
}

/** Stands in for an application's config module: a provider the encryption options are built from. */
@Module({
  providers: [{ provide: APP_CONFIG, useValue: { algorithm: 'ChaCha20-Poly1305', compressionThreshold: 64 } satisfies AppConfig }],
  exports: [APP_CONFIG],
})
class AppConfigModule {}

@Injectable()
class EncryptionConfigFactory {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  createEncryptionOptions(): EncryptionModuleOptions {
    return { algorithm: this.config.algorithm, compressionThreshold: this.config.compressionThreshold };
  }
}

@Injectable()
class CbcConfigFactory {
  created = 0;

  async createEncryptionOptions(): Promise<EncryptionModuleOptions> {
    this.created++;
    return { algorithm: 'AES-256-CBC-HMAC-SHA256', keySize: 64 };
  }
}

@Module({ providers: [CbcConfigFactory], exports: [CbcConfigFactory] })
class CbcConfigModule {}

/** A consumer in a feature module that does not import EncryptionModule itself. */
@Injectable()
class SecretsRepository {
  constructor(
    @Inject(EncryptionService) readonly encryption: EncryptionService,
    @Inject(KeyManagerService) readonly keys: KeyManagerService,
    @InjectEncryptionOptions() readonly options: ResolvedEncryptionOptions,
  ) {}
}

@Module({ providers: [SecretsRepository], exports: [SecretsRepository] })
class SecretsModule {}

const open: TestingModule[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((module) => module.close()));
});

async function boot(metadata: ModuleMetadata): Promise<TestingModule> {
  const module = await Test.createTestingModule(metadata).compile();
  open.push(module);
  await module.init();
  return module;
}

async function expectWorking(module: TestingModule, cipherId: number): Promise<void> {
  const encryption = module.get(EncryptionService);
  const ciphertext = await encryption.encrypt({ works: true });
  expect(ciphertext[1]).toBe(cipherId);
  expect(await encryption.decrypt(ciphertext)).toEqual({ works: true });
}

describe('EncryptionModule', () => {
  describe('forRoot', () => {
    test('provides working services with the given options, defaults for the rest', async () => {
      const module = await boot({ imports: [EncryptionModule.forRoot({ algorithm: 'ChaCha20-Poly1305' })] });
      const options = module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS);
      expect(options).toMatchObject({ algorithm: 'ChaCha20-Poly1305', keySize: 32, iterations: 600_000 });
      await expectWorking(module, CHACHA20_POLY1305.id);
    });

    test('works with no options at all', async () => {
      const module = await boot({ imports: [EncryptionModule.forRoot()] });
      expect(module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS).algorithm).toBe('AES-256-GCM');
      await expectWorking(module, AES_256_GCM.id);
    });

    test('EncryptionService and KeyManagerService share one key ring', async () => {
      const module = await boot({ imports: [EncryptionModule.forRoot({})] });
      const encryption = module.get(EncryptionService);
      const keys = module.get(KeyManagerService);
      const before = await encryption.encrypt('x');
      const rotated = await keys.rotate();
      const after = await encryption.encrypt('x');
      expect(parseEnvelope(before)!.keyId).not.toBe(rotated.id);
      expect(parseEnvelope(after)!.keyId).toBe(rotated.id);
    });

    test('uses the given key store', async () => {
      const keyStore = new InMemoryKeyStore();
      const masterKey = randomBytes(32);
      const module = await boot({ imports: [EncryptionModule.forRoot({ keyStore, masterKey })] });
      expect((await keyStore.load())!.keys.map((k) => k.id)).toEqual([module.get(KeyManagerService).activeKey.id]);
    });
  });

  describe('forRootAsync', () => {
    test('useFactory with imports and inject builds the options from a config provider', async () => {
      const module = await boot({
        imports: [
          EncryptionModule.forRootAsync({
            imports: [AppConfigModule],
            inject: [APP_CONFIG],
            useFactory: (config: AppConfig) => ({ algorithm: config.algorithm, compressionThreshold: config.compressionThreshold }),
          }),
        ],
      });
      expect(module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS)).toMatchObject({
        algorithm: 'ChaCha20-Poly1305',
        compressionThreshold: 64,
        enableCompression: true,
      });
      await expectWorking(module, CHACHA20_POLY1305.id);
    });

    test('useFactory may be async', async () => {
      const module = await boot({
        imports: [
          EncryptionModule.forRootAsync({
            useFactory: async () => {
              await new Promise((resolve) => setImmediate(resolve));
              return { algorithm: 'AES-256-CBC-HMAC-SHA256' as const };
            },
          }),
        ],
      });
      await expectWorking(module, AES_256_CBC_HMAC_SHA256.id);
    });

    test('useClass instantiates the factory class, which can inject from imports', async () => {
      const module = await boot({
        imports: [EncryptionModule.forRootAsync({ imports: [AppConfigModule], useClass: EncryptionConfigFactory })],
      });
      expect(module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS)).toMatchObject({
        algorithm: 'ChaCha20-Poly1305',
        compressionThreshold: 64,
      });
      await expectWorking(module, CHACHA20_POLY1305.id);
    });

    test('useExisting reuses a factory provider exported by an imported module', async () => {
      const module = await boot({
        imports: [EncryptionModule.forRootAsync({ imports: [CbcConfigModule], useExisting: CbcConfigFactory })],
      });
      expect(module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS)).toMatchObject({
        algorithm: 'AES-256-CBC-HMAC-SHA256',
        keySize: 64,
      });
      // The existing instance was used, not a new one.
      expect(module.get(CbcConfigFactory, { strict: false }).created).toBe(1);
      await expectWorking(module, AES_256_CBC_HMAC_SHA256.id);
    });
  });

  describe('isGlobal', () => {
    test.each([
      ['forRoot', () => EncryptionModule.forRoot({ isGlobal: true, compressionThreshold: 10 })],
      ['forRootAsync', () => EncryptionModule.forRootAsync({ isGlobal: true, useFactory: () => ({ compressionThreshold: 10 }) })],
    ])('%s with isGlobal: true makes the services injectable in modules that do not import it', async (_name, encryptionModule) => {
      const module = await boot({ imports: [encryptionModule(), SecretsModule] });
      const repository = module.get(SecretsRepository);
      expect(repository.encryption).toBe(module.get(EncryptionService));
      expect(repository.keys).toBe(module.get(KeyManagerService));
      // isGlobal is a module extra, not an encryption option: the options are otherwise as given.
      expect(repository.options.compressionThreshold).toBe(10);
      expect(repository.options).not.toHaveProperty('isGlobal');
      expect(await repository.encryption.decrypt(await repository.encryption.encrypt('global'))).toBe('global');
    });

    test('without isGlobal, a module that does not import EncryptionModule cannot inject its services', async () => {
      await expect(
        Test.createTestingModule({ imports: [EncryptionModule.forRoot({}), SecretsModule] }).compile(),
      ).rejects.toThrow(/SecretsRepository/);
    });
  });

  describe('invalid configuration fails application start with EncryptionConfigError', () => {
    test.each([
      ['forRoot', 'keySize', () => EncryptionModule.forRoot({ keySize: 31 })],
      ['forRoot with an unknown option', 'keysize', () => EncryptionModule.forRoot({ keysize: 32 } as EncryptionModuleOptions)],
      ['forRootAsync useFactory', 'iterations', () => EncryptionModule.forRootAsync({ useFactory: () => ({ iterations: 1000 }) })],
      [
        'forRootAsync useClass',
        'algorithm',
        () =>
          EncryptionModule.forRootAsync({
            useClass: class {
              createEncryptionOptions(): EncryptionModuleOptions {
                return { algorithm: 'DES' as never };
              }
            },
          }),
      ],
    ])('%s (%s)', async (_name, field, encryptionModule) => {
      let error: unknown;
      try {
        const module = await Test.createTestingModule({ imports: [encryptionModule()] }).compile();
        open.push(module);
        await module.init();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(EncryptionConfigError);
      expect((error as Error).message).toMatch(new RegExp(`^Invalid encryption configuration: ${field} `));
    });
  });
});
