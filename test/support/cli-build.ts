import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import ts from 'typescript';

const ROOT = resolve(process.cwd());
const SOURCES = ['libs/encryption/src', 'apps/cli/src'];
/** Inside the repository's node_modules, so the build resolves the installed packages as the real bin does. */
const CACHE = join(ROOT, 'node_modules/.cache/nestjs-encryption-cli');

export interface CliBuild {
  /** The built CLI entry point (`apps/cli/src/main.js`), executable through its shebang. */
  main: string;
  /** The built `.js` path of a repository `.ts` file. */
  path(file: string): string;
  remove(): void;
}

/**
 * Transpiles the library and the CLI from the current sources to ES modules that plain Node runs (what
 * `npm run build` makes, without type-checking the whole repository), so the tests run the CLI as
 * operators do: a separate process, through its `#!/usr/bin/env node` line.
 */
export function buildCli(): CliBuild {
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
  for (const file of SOURCES.flatMap((dir) => listTs(join(ROOT, dir)))) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: file });
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, rewriteSelfImports(outputText, dirname(target), outDir));
  }
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  const main = join(outDir, 'apps/cli/src/main.js');
  chmodSync(main, 0o755);
  return {
    main,
    path: (file) => join(outDir, file).replace(/\.ts$/, '.js'),
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

/**
 * Imports of `nestjs-encryption[/sub]` become the built entry point, as Jest's mapper does; other
 * strings (the program name, `nestjs-encryption/package.json`) stay as they are.
 */
function rewriteSelfImports(code: string, fromDir: string, outDir: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*)(['"])nestjs-encryption(?:\/([a-z-]+))?\2/g,
    (_, prefix: string, quote: string, sub?: string) => {
      const entry = join(outDir, 'libs/encryption/src', sub ?? '', 'index.js');
      const path = relative(fromDir, entry);
      return `${prefix}${quote}${path.startsWith('.') ? path : `./${path}`}${quote}`;
    },
  );
}
