import { chmodSync } from 'node:fs';

import type { NodeBuild } from './node-build.js';
import { buildForNode } from './node-build.js';

export interface CliBuild extends NodeBuild {
  /** The built CLI entry point (`apps/cli/src/main.js`), executable through its shebang. */
  main: string;
}

/**
 * Transpiles the library and the CLI from the current sources to ES modules that plain Node runs (what
 * `npm run build` makes, without type-checking the whole repository), so the tests run the CLI as
 * operators do: a separate process, through its `#!/usr/bin/env node` line.
 */
export function buildCli(): CliBuild {
  const build = buildForNode({ sources: ['libs/encryption/src', 'apps/cli/src'], cacheName: 'nestjs-encryption-cli' });
  const main = build.path('apps/cli/src/main.ts');
  chmodSync(main, 0o755);
  return { ...build, main };
}
