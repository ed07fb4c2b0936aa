import { Logger } from '@nestjs/common';

import { loadDemoConfig } from './config/demo.config.js';
import { createDemoApp } from './create-demo-app.js';

async function bootstrap(): Promise<void> {
  const config = loadDemoConfig();
  const app = await createDemoApp(config);
  await app.listen(config.port, '127.0.0.1');
  new Logger('Demo').log(`Listening on http://127.0.0.1:${config.port} (${config.adapter}, ${config.keyStore} key store)`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Demo').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
