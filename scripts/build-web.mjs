// Bundles the demo's browser page (apps/demo/web) into dist/apps/demo/web, where the demo serves it
// (apps/demo/src/web/web.controller.ts). Part of `npm run build`; specs pass `--outdir` to build elsewhere.
// jose is resolved from node_modules for the browser (WebCrypto); the bundle loads nothing from elsewhere.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(ROOT, 'apps/demo/web');
export const DEFAULT_OUTDIR = join(ROOT, 'dist/apps/demo/web');

/** Writes index.html, main.js and style.css to `outdir`; returns the bundle's input files. */
export async function buildWeb({ outdir = DEFAULT_OUTDIR } = {}) {
  await mkdir(outdir, { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [join(SOURCE, 'main.ts'), join(SOURCE, 'style.css')],
    outdir,
    bundle: true,
    platform: 'browser',
    conditions: ['browser'],
    format: 'esm',
    target: ['es2022'],
    minify: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  await copyFile(join(SOURCE, 'index.html'), join(outdir, 'index.html'));
  return Object.keys(result.metafile.inputs);
}

// `node scripts/build-web.mjs [--outdir <dir>]`
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--outdir');
  const outdir = at === -1 ? DEFAULT_OUTDIR : resolve(process.argv[at + 1] ?? '');
  const inputs = await buildWeb({ outdir });
  console.log(`build-web: ${inputs.length} inputs bundled into ${outdir}`);
}
