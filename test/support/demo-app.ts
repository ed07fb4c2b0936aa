import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import type { DecryptOptions, EncryptOptions, KeyMetadata } from 'nestjs-encryption';
import ts from 'typescript';

const ROOT = resolve(process.cwd());
const SOURCES = ['libs/encryption/src', 'apps/demo/src'];
const CHILD = 'test/support/demo-app.child.ts';
/** Inside the repository's node_modules, so the build resolves the installed packages as the demo does. */
const CACHE = join(ROOT, 'node_modules/.cache/nestjs-encryption-demo');

/** A transpiled copy of the library, the demo app and its child runner that plain Node runs. */
export interface DemoBuild {
  childPath: string;
  remove(): void;
}

/** Transpiles (no type-check: `npm run lint` does that) to ES modules in a fresh directory. */
export function buildDemoForNode(): DemoBuild {
  mkdirSync(CACHE, { recursive: true });
  const outDir = mkdtempSync(join(CACHE, 'build-'));
  const compilerOptions: ts.CompilerOptions = {
    module: ts.ModuleKind.ES2022,
    target: ts.ScriptTarget.ES2022,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    isolatedModules: true,
  };
  const files = [...SOURCES.flatMap((dir) => listTs(join(ROOT, dir))), join(ROOT, CHILD)];
  for (const file of files) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: file });
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, rewriteSelfImports(outputText, dirname(target), outDir));
  }
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  return {
    childPath: join(outDir, CHILD).replace(/\.ts$/, '.js'),
    remove: () => rmSync(outDir, { recursive: true, force: true }),
  };
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return /(?<!\.d|\.spec|\.e2e-spec)\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** `nestjs-encryption[/sub]` becomes the built library source, as Jest's moduleNameMapper does. */
function rewriteSelfImports(code: string, fromDir: string, outDir: string): string {
  return code.replace(/(['"])nestjs-encryption(?:\/([a-z-]+))?\1/g, (_, quote: string, sub?: string) => {
    const path = relative(fromDir, join(outDir, 'libs/encryption/src', sub ?? '', 'index.js'));
    return `${quote}${path.startsWith('.') ? path : `./${path}`}${quote}`;
  });
}

export type DecryptResult = { ok: true; value: unknown } | { ok: false; name: string; code?: string };

export interface StoredCustomer {
  id: string;
  name: string;
  email: string;
  phone?: string;
  nationalId: string;
  createdAt: string;
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
