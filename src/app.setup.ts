import { INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import type { Server } from 'node:http';
import type { Logger as Pino } from 'pino';
import { ADMIN_BEARER } from './admin/admin.controller';
import { AppModule } from './app.module';
import { AllExceptionsFilter } from './common/all-exceptions.filter';
import { expandQueryModels } from './common/api-query-model';
import { APP_VERSION, appConfig, AppConfig, nominatimConfig, NominatimConfig } from './config/configuration';
import { FrontDoor } from './http/front-door.service';
import { DrainingExpressAdapter } from './http/graceful-shutdown';
import { applyTargetLimit } from './http/request-target';
import { applyServerTimeouts } from './http/server-timeouts';
import { PinoNestLogger } from './logging/app-logger';
import { APP_LOGGER } from './logging/logging.module';
import { METRICS_BEARER } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import metadata from './metadata';

/**
 * Builds the application exactly as production runs it (used by main.ts, the e2e tests and the
 * benchmark), without listening.
 */
export async function createApp(): Promise<NestExpressApplication> {
  const adapter = new DrainingExpressAdapter();
  // No route reads a request body (purges take query parameters): parsing one only turned other
  // methods' documented 404 into a 400 or 413, and a health probe sending a body into a 400.
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(), adapter, {
    bufferLogs: true,
    abortOnError: false,
    bodyParser: false,
  });
  app.useLogger(new PinoNestLogger(app.get<Pino>(APP_LOGGER)));
  app.disable('x-powered-by');
  const config = app.get<AppConfig>(appConfig.KEY);
  if (config.trustProxy) app.set('trust proxy', 1);
  adapter.drainTimeoutMs = config.shutdownTimeoutMs;
  app.useGlobalFilters(new AllExceptionsFilter());
  // On SIGTERM/SIGINT: drain HTTP, run the shutdown hooks (Redis closed, logs flushed), then exit 0.
  // process.exit rather than re-raising the signal, so exit handlers run (pino's final flush among them).
  app.enableShutdownHooks([], { useProcessExit: true });
  app.use(trailingSlashToPage);
  await setupSwagger(app);
  await app.init();
  app.get(FrontDoor).install(app.getHttpServer() as Server);
  const metrics = app.get(MetricsService);
  applyServerTimeouts(app.getHttpServer() as Server, config, (reason) => metrics.clientErrors.inc({ reason }));
  applyTargetLimit(app.getHttpServer() as Server, config.maxUrlBytes);
  warnAboutPolicy(app);
  return app;
}

/** The browser pages whose URLs are relative to their own path (/docs, /dashboard): see trailingSlashToPage. */
const PAGES_AT_SLASH = new Map([
  ['/docs/', '../docs'],
  ['/dashboard/', '../dashboard'],
]);

/**
 * /docs/ and /dashboard/ (Express routes them to the page too) redirect to the page without the
 * slash: from there the page's relative URLs (Swagger UI's '.' server, the dashboard's scripts and
 * data) would miss. The redirect is relative as well, so that a proxy's path prefix stays.
 */
function trailingSlashToPage(req: Request, res: Response, next: NextFunction): void {
  const query = req.originalUrl.indexOf('?');
  const to = PAGES_AT_SLASH.get(query < 0 ? req.originalUrl : req.originalUrl.slice(0, query));
  if (to !== undefined && (req.method === 'GET' || req.method === 'HEAD')) res.redirect(301, `${to}${query < 0 ? '' : req.originalUrl.slice(query)}`);
  else next();
}

/**
 * The OpenAPI document at /docs-json and Swagger UI at /docs. The Swagger plugin's metadata (DTO JSDoc)
 * comes from src/metadata.ts (scripts/generate-metadata.ts), so `nest build` and the @swc/jest tests,
 * where the compiler plugin does not run, document the same.
 */
async function setupSwagger(app: INestApplication): Promise<void> {
  await SwaggerModule.loadPluginMetadata(metadata);
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('places-cache')
      .setDescription(
        'A caching gateway in front of the OpenStreetMap Nominatim geocoding API. `/api` answers ' +
          '`{cache, data}`; `/search`, `/reverse`, `/lookup`, `/status` and `/details` answer exactly like ' +
          'Nominatim (also under their old `.php` names, and `/` for search), plus X-Cache, Cache-Status, Age ' +
          'and Cache-Control headers. Data © OpenStreetMap contributors, ODbL.',
      )
      .setVersion(APP_VERSION)
      // Relative, so that "Try it out" asks the service where the page came from: behind a proxy that
      // adds a path prefix (/places/docs), /places/api, not the proxy's /api. Swagger UI resolves it
      // against the page, OpenAPI tools against /docs-json: both the service's root.
      .addServer('.', 'This service')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN (admin routes only)' }, ADMIN_BEARER)
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN (/metrics, when set)' }, METRICS_BEARER)
      .build(),
  );
  SwaggerModule.setup('docs', app, expandQueryModels(document), { jsonDocumentUrl: 'docs-json', yamlDocumentUrl: 'docs-yaml' });
}

function warnAboutPolicy(app: INestApplication): void {
  const n = app.get<NominatimConfig>(nominatimConfig.KEY);
  const logger = new Logger('Nominatim');
  if (n.isPublicServer && n.userAgentIsPlaceholder) {
    logger.warn(
      'Using the public Nominatim server with a default or placeholder User-Agent: set NOMINATIM_USER_AGENT (and ' +
        'NOMINATIM_EMAIL) to identify your application, as its usage policy requires.',
    );
  }
  if (n.upstreams.length === 1) {
    logger.log(`Upstream ${n.baseUrl} at most ${n.maxRps} request(s)/s, timeout ${n.timeoutMs} ms`);
  } else {
    // In order of preference; the URL without credentials (a private server behind basic auth).
    const list = n.upstreams.map((u, i) => `${i + 1}. ${new URL(u.baseUrl).origin}${new URL(u.baseUrl).pathname.replace(/\/+$/, '')} at most ${u.maxRps}/s`);
    logger.log(
      `Upstreams, in order of preference: ${list.join('; ')}; timeout ${n.timeoutMs} ms, a failing one passed over for at most ${n.backoffMaxMs / 1000} s`,
    );
  }
}
