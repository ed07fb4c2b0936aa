import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { Controller, Get, Header, NotFoundException, StreamableFile } from '@nestjs/common';

/**
 * Where `scripts/build-web.mjs` writes the page: `dist/apps/demo/web/` next to this file's
 * `dist/apps/demo/src/web/` (the e2e specs' transpiled copy keeps the same layout).
 */
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** Everything the page may load comes from this origin; the bundle makes no other request. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The browser demo (apps/demo/web): a form whose contents the browser encrypts to the server's JWKS
 * before posting them. Files are streamed as `StreamableFile` so both HTTP adapters serve them alike.
 */
@Controller()
export class WebController {
  @Get()
  @Header('Content-Security-Policy', CSP)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  index(): Promise<StreamableFile> {
    return serve('index.html', 'text/html; charset=utf-8');
  }

  @Get('assets/main.js')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  script(): Promise<StreamableFile> {
    return serve('main.js', 'text/javascript; charset=utf-8');
  }

  @Get('assets/style.css')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  style(): Promise<StreamableFile> {
    return serve('style.css', 'text/css; charset=utf-8');
  }
}

async function serve(name: string, type: string): Promise<StreamableFile> {
  let content: Buffer;
  try {
    content = await readFile(WEB_DIR + name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new NotFoundException(
      `The demo page is not built (${name} missing): run \`npm run build\`, which bundles apps/demo/web into dist/apps/demo/web`,
    );
  }
  return new StreamableFile(content, { type, length: content.length });
}
