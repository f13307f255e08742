/**
 * The "floor": the smallest Nest 12 + Express app whose GET /api returns a constant ~5 KB JSON string
 * (BODY_FILE). What any Nest+Express service pays per request before doing any work of its own.
 */
import 'reflect-metadata';
import { Controller, Get, Header, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { announce, env } from './child';

const BODY = readFileSync(env('BODY_FILE'), 'utf8');

@Controller()
class FloorController {
  @Get('api')
  @Header('Content-Type', 'application/json; charset=utf-8')
  api(): string {
    return BODY;
  }
}

@Module({ controllers: [FloorController] })
class FloorModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(FloorModule, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  announce(server);
}

// A baseline that cannot start says why and exits, so the driver sees it at once.
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
