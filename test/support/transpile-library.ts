import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import ts from 'typescript';

const SOURCE_ROOT = resolve(process.cwd(), 'libs/encryption/src');

/**
 * Transpiles a library module and everything it imports by relative path into `outDir`, so a plain
 * `node` child process (which can't load TypeScript) runs the real source. Returns the entry's .js path.
 */
export function transpileLibraryModule(entry: string, outDir: string): string {
  const pending = [resolve(SOURCE_ROOT, entry)];
  const done = new Set<string>();
  while (pending.length) {
    const file = pending.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const source = readFileSync(file, 'utf8');
    for (const [, specifier] of source.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) {
      pending.push(resolve(dirname(file), `${specifier}.ts`));
    }
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, experimentalDecorators: true },
    });
    const target = join(outDir, relative(SOURCE_ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  return join(outDir, entry).replace(/\.ts$/, '.js');
}
