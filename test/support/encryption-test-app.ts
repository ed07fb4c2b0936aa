import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';
import type { EncryptionModuleOptions, ResolvedEncryptionOptions } from 'nestjs-encryption';
import {
  ENCRYPTION_OPTIONS,
  EncryptionEvents,
  EncryptionModule,
  EncryptionService,
  KeyManagerService,
} from 'nestjs-encryption';

/** An initialised `EncryptionModule.forRoot(options)` and its services. */
export interface EncryptionTestApp {
  module: TestingModule;
  encryption: EncryptionService;
  keys: KeyManagerService;
  events: EncryptionEvents;
  options: ResolvedEncryptionOptions;
  close(): Promise<void>;
}

/**
 * Compiles `EncryptionModule.forRoot(options)` on its own and runs `init()`, so the key ring is loaded
 * (or created) exactly as in an application.
 */
export async function createEncryptionTestApp(options: EncryptionModuleOptions = {}): Promise<EncryptionTestApp> {
  const module = await Test.createTestingModule({ imports: [EncryptionModule.forRoot(options)] }).compile();
  await module.init();
  return {
    module,
    encryption: module.get(EncryptionService),
    keys: module.get(KeyManagerService),
    events: module.get(EncryptionEvents),
    options: module.get<ResolvedEncryptionOptions>(ENCRYPTION_OPTIONS),
    close: () => module.close(),
  };
}

/** Creates test apps and closes every one of them in `closeAll()` (call it from `afterAll`/`afterEach`). */
export function encryptionTestApps(): {
  create(options?: EncryptionModuleOptions): Promise<EncryptionTestApp>;
  closeAll(): Promise<void>;
} {
  const open: EncryptionTestApp[] = [];
  return {
    async create(options) {
      const app = await createEncryptionTestApp(options);
      open.push(app);
      return app;
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((app) => app.close()));
    },
  };
}
