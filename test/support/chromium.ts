import { existsSync } from 'node:fs';

import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';

/** Debian's chromium package; scripts/test-prerequisites.sh installs it when missing. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with nothing running in the background that could reach the network by itself. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/test-prerequisites.sh (it installs Debian's chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Containers often have a small /dev/shm; Chromium then crashes tabs under load.
      '--disable-dev-shm-usage',
    ],
  });
}
