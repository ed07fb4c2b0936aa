/**
 * Runs the demo app (apps/demo) in a plain Node process and takes commands over IPC. The demo imports
 * `@willsoto/nestjs-prometheus`, which Jest's module system can't load on this Node (see
 * test/fixtures/operations/node-build.ts), so specs start it with `startDemoProcess()` from
 * demo-app.ts and talk to it over HTTP; the commands stand in for `app.get(...)`.
 */
import type { INestApplication } from '@nestjs/common';
import { EncryptionService, KeyManagerService } from 'nestjs-encryption';
import { register } from 'prom-client';

import { loadDemoConfig } from '../../apps/demo/src/config/demo.config.js';
import { createDemoApp } from '../../apps/demo/src/create-demo-app.js';
import { CustomersRepository } from '../../apps/demo/src/customers/customers.repository.js';

let app: INestApplication | undefined;

function current(): INestApplication {
  if (!app) throw new Error('boot first');
  return app;
}

async function close(): Promise<void> {
  await app?.close();
  app = undefined;
  // prom-client keeps metrics in one global registry: the next app registers them afresh.
  register.clear();
}

const commands: Record<string, (args: any) => unknown> = {
  async boot({ env }: { env: NodeJS.ProcessEnv }) {
    await close();
    app = await createDemoApp(loadDemoConfig(env), false);
    await app.listen(0, '127.0.0.1');
    return { url: await app.getUrl() };
  },
  close,
  encryptToString: ({ value, options }) => current().get(EncryptionService).encryptToString(value, options),
  async decrypt({ input, options }) {
    try {
      return { ok: true, value: await current().get(EncryptionService).decrypt(input, options) };
    } catch (error) {
      return { ok: false, name: (error as Error).name, code: (error as { code?: string }).code };
    }
  },
  stored: ({ id }: { id: string }) => current().get(CustomersRepository).stored(id),
  listKeys: () => current().get(KeyManagerService).listKeys(),
  activeKey() {
    const { id, version, createdAt } = current().get(KeyManagerService).activeKey;
    return { id, version, createdAt };
  },
};

process.on('message', (message: { id: number; cmd: string; args?: unknown }) => {
  void (async () => {
    try {
      const command = commands[message.cmd];
      if (!command) throw new Error(`unknown command ${message.cmd}`);
      process.send!({ id: message.id, ok: true, result: await command(message.args ?? {}) });
    } catch (error) {
      process.send!({
        id: message.id,
        ok: false,
        error: { name: (error as Error).name, message: (error as Error).message },
      });
    }
  })();
});
process.on('disconnect', () => void close().finally(() => process.exit(0)));
process.send!({ ready: true });
