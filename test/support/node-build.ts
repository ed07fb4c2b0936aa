import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import ts from 'typescript';

const ROOT = resolve(process.cwd());

/** A transpiled copy of some repository sources that plain Node runs, outside Jest's module system. */
export interface NodeBuild {
  outDir: string;
  /** The built `.js` path of a repository `.ts` file. */
  path(file: string): string;
  remove(): void;
}

export interface NodeBuildOptions {
  /** Repository-relative folders (every non-spec `.ts` inside) or single `.ts` files. */
  sources: string[];
  /** Folder under `node_modules/.cache` for the builds: inside the repository, so built code resolves the installed packages as an app would. */
  cacheName: string;
}

/**
 * Transpiles (no type-check: `npm run lint` does that) to ES modules in a fresh directory, with decorator
 * metadata for Nest's injection, and points `nestjs-encryption[/sub]` imports at the built library source
 * (not `dist`, which other work may be rebuilding at the same moment). Plain Node is needed for
 * `@willsoto/nestjs-prometheus`: it is CommonJS and `require()`s the ESM-only `@nestjs/common`, which
 * Node >= 20.19 does natively but Jest's module system on Node < 24.9 cannot.
 */
export function buildForNode({ sources, cacheName }: NodeBuildOptions): NodeBuild {
  const cache = join(ROOT, 'node_modules/.cache', cacheName);
  mkdirSync(cache, { recursive: true });
  const outDir = mkdtempSync(join(cache, 'build-'));
  const compilerOptions: ts.CompilerOptions = {
    module: ts.ModuleKind.ES2022,
    target: ts.ScriptTarget.ES2022,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    isolatedModules: true,
  };
  for (const file of sources.flatMap((source) => listTs(join(ROOT, source)))) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: file });
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, rewriteSelfImports(outputText, dirname(target), outDir));
  }
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  return {
    outDir,
    path: (file) => join(outDir, file).replace(/\.ts$/, '.js'),
    remove: () => rmSync(outDir, { recursive: true, force: true }),
  };
}

function listTs(dir: string): string[] {
  if (dir.endsWith('.ts')) return [dir];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return /(?<!\.d|\.spec|\.e2e-spec)\.ts$/.test(entry.name) ? [path] : [];
  });
}

/**
 * Imports of `nestjs-encryption[/sub]` become the built entry point, as Jest's mapper does; other
 * strings (the CLI's program name, `nestjs-encryption/package.json`) stay as they are.
 */
function rewriteSelfImports(code: string, fromDir: string, outDir: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*)(['"])nestjs-encryption(?:\/([a-z-]+))?\2/g,
    (_, prefix: string, quote: string, sub?: string) => {
      const path = relative(fromDir, join(outDir, 'libs/encryption/src', sub ?? '', 'index.js'));
      return `${prefix}${quote}${path.startsWith('.') ? path : `./${path}`}${quote}`;
    },
  );
}
