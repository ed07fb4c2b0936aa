import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Proves the library is a real npm package: `npm pack` it, install the tarball into a fresh Nest app
 * (outside this repository, so nothing resolves from the workspace) and run that app.
 */
describe('npm package', () => {
  const libraryDir = resolve(process.cwd(), 'libs/encryption');
  let appDir: string;

  beforeAll(() => {
    appDir = mkdtempSync(join(tmpdir(), 'nestjs-encryption-consumer-'));
  });

  afterAll(() => rmSync(appDir, { recursive: true, force: true }));

  it('packs, installs into a fresh Nest app and works there', () => {
    const run = (cmd: string, args: string[], cwd: string) =>
      execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });

    run('npm', ['pack', '--pack-destination', appDir], libraryDir);
    const tarball = readdirSync(appDir).find((file) => file.endsWith('.tgz'));
    expect(tarball).toMatch(/^nestjs-encryption-\d+\.\d+\.\d+\.tgz$/);
    const contents = run('tar', ['-tzf', join(appDir, tarball!)], appDir);
    expect(contents).toContain('package/dist/index.js');
    expect(contents).toContain('package/dist/index.d.ts');
    expect(contents).not.toMatch(/\.spec\.(js|ts)/);

    writeFileSync(
      join(appDir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`, '@nestjs/common@^12', '@nestjs/core@^12', 'reflect-metadata', 'rxjs'],
      appDir,
    );
    writeFileSync(
      join(appDir, 'main.js'),
      `import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EncryptionModule, EncryptionService, KeyManagerService, DecryptionError } from 'nestjs-encryption';

class AppModule {}
Module({ imports: [EncryptionModule.forRootAsync({ isGlobal: true, useFactory: async () => ({ algorithm: 'ChaCha20-Poly1305' }) })] })(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
const encryption = app.get(EncryptionService);
const token = await encryption.encryptToString({ order: 42, items: ['a', 'b'] }, { context: 'consumer' });
await app.get(KeyManagerService).rotate();
const value = await encryption.decrypt(token, { context: 'consumer' });
let rejected = false;
try { await encryption.decrypt(token, { context: 'other' }); } catch (error) { rejected = error instanceof DecryptionError; }
console.log(JSON.stringify({ value, rejected, keys: app.get(KeyManagerService).listKeys().length }));
await app.close();
`,
    );
    const output = run('node', ['main.js'], appDir);
    expect(JSON.parse(output.trim().split('\n').pop()!)).toEqual({
      value: { order: 42, items: ['a', 'b'] },
      rejected: true,
      keys: 2,
    });
    // The declarations are usable by a TypeScript consumer.
    writeFileSync(
      join(appDir, 'check.ts'),
      `import { EncryptionService, type EncryptionModuleOptions } from 'nestjs-encryption';
const options: EncryptionModuleOptions = { algorithm: 'AES-256-GCM', compressionThreshold: 2048 };
export async function roundTrip(service: EncryptionService): Promise<string> {
  return service.decrypt<string>(await service.encryptToString('x'));
}
export { options };
`,
    );
    run(
      process.execPath,
      [
        resolve(process.cwd(), 'node_modules/typescript/bin/tsc'),
        '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
        '--experimentalDecorators', '--skipLibCheck', 'false', '--types', 'node', '--typeRoots', resolve(process.cwd(), 'node_modules/@types'),
        'check.ts',
      ],
      appDir,
    );
  }, 240_000);
});
