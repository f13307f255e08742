import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.setup';
import { appConfig, AppConfig, loadConfig } from './config/configuration';

async function bootstrap(): Promise<void> {
  try {
    loadConfig(process.env);
  } catch (e) {
    // One readable line naming the variable, then stop: no stack trace for a typo in an env var.
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
  const app = await createApp();
  const config = app.get<AppConfig>(appConfig.KEY);
  await app.listen(config.port, config.host);
  new Logger('Bootstrap').log(`places-cache listening on http://${config.host}:${config.port} (docs at /docs)`);
}

void bootstrap();
