import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';

import type { DecryptOptions, EncryptOptions, KeyMetadata } from 'nestjs-encryption';

import { buildForNode } from './node-build.js';

const CHILD = 'test/support/demo-app.child.ts';

/** A transpiled copy of the library, the demo app and its child runner that plain Node runs. */
export interface DemoBuild {
  childPath: string;
  remove(): void;
}

/** The library, the demo app and its child runner, built for plain Node (see `node-build.ts`). */
export function buildDemoForNode(): DemoBuild {
  const build = buildForNode({
    sources: ['libs/encryption/src', 'apps/demo/src', CHILD],
    cacheName: 'nestjs-encryption-demo',
  });
  return { childPath: build.path(CHILD), remove: build.remove };
}

export type DecryptResult = { ok: true; value: unknown } | { ok: false; name: string; code?: string };

/** A customer as the demo stores it: the personal fields as one envelope bound to `{ record: id }`. */
export interface StoredCustomer {
  id: string;
  name: string;
  createdAt: string;
  personal: string;
}

/** What `StoredCustomer.personal` decrypts to: the personal fields of a customer, absent ones left out. */
export function personalOf(customer: { email: string; phone?: string; nationalId: string }): Record<string, string> {
  const { email, phone, nationalId } = customer;
  return phone === undefined ? { email, nationalId } : { email, phone, nationalId };
}

/** The demo app in its own Node process; the methods are what a spec would otherwise `app.get()`. */
export interface DemoProcess {
  /** Builds the app with `createDemoApp(loadDemoConfig(env))` (closing any previous one) and listens on a free port. */
  boot(env: NodeJS.ProcessEnv): Promise<string>;
  close(): Promise<void>;
  /** `app.get(EncryptionService)` */
  encryptToString(value: unknown, options?: EncryptOptions): Promise<string>;
  decrypt(input: string, options?: DecryptOptions): Promise<DecryptResult>;
  /** `app.get(CustomersRepository).stored(id)` */
  stored(id: string): Promise<StoredCustomer | undefined>;
  /** `app.get(KeyManagerService)` */
  listKeys(): Promise<KeyMetadata[]>;
  activeKey(): Promise<{ id: string; version: number; createdAt: Date }>;
  /** What the process wrote to stderr, for failure messages. */
  stderr(): string;
  stop(): Promise<void>;
}

export async function startDemoProcess(build: DemoBuild): Promise<DemoProcess> {
  const child: ChildProcess = fork(build.childPath, [], {
    serialization: 'advanced',
    execArgv: [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`demo process exited with ${code} before it was ready:\n${stderr}`)));
  });
  child.on(
    'message',
    (message: { id: number; ok: boolean; result?: unknown; error?: { name: string; message: string } }) => {
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else
        waiter.reject(Object.assign(new Error(`${message.error!.message}\n${stderr}`), { name: message.error!.name }));
    },
  );
  child.on('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`demo process exited with ${code}:\n${stderr}`));
    pending.clear();
  });

  function call<T>(cmd: string, args?: unknown): Promise<T> {
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, cmd, args });
    });
  }

  return {
    boot: async (env) => (await call<{ url: string }>('boot', { env })).url,
    close: () => call('close'),
    encryptToString: (value, options) => call('encryptToString', { value, options }),
    decrypt: (input, options) => call('decrypt', { input, options }),
    stored: (id) => call('stored', { id }),
    listKeys: () => call('listKeys'),
    activeKey: () => call('activeKey'),
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.connected) child.disconnect();
      await exited;
    },
  };
}

/** The key id inside a ciphertext's text form (docs/FORMAT.md: byte 3 is its length, the id follows). */
export function keyIdOf(ciphertext: string): string {
  const envelope = Buffer.from(ciphertext, 'base64url');
  return envelope.subarray(4, 4 + envelope[3]).toString('utf8');
}
