import { Controller, Get, Header, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { readFileSync } from 'node:fs';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard-page';
import { DashboardData, DashboardSampler } from './dashboard-sampler';
import { DashboardTokenGuard } from './dashboard-token.guard';

/** uPlot's browser build and stylesheet, from the npm package: served by us, never from a CDN. */
const UPLOT_JS = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'));
const UPLOT_CSS = readFileSync(require.resolve('uplot/dist/uPlot.min.css'));

/**
 * GET /dashboard: a live page of this instance's numbers (docs/operations.md, "Dashboard"). Not in
 * the OpenAPI document: it is a page for people, not an API.
 */
@ApiExcludeController()
@UseGuards(DashboardTokenGuard)
@Controller('dashboard')
export class DashboardController {
  constructor(private readonly sampler: DashboardSampler) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  page(): string {
    // /dashboard/ never gets here: it is redirected to /dashboard (app.setup.ts, trailingSlashToPage).
    return DASHBOARD_HTML;
  }

  @Get('data')
  @Header('Cache-Control', 'no-store')
  data(): Promise<DashboardData> {
    return this.sampler.data();
  }

  @Get('dashboard.js')
  script(@Res() res: Response): void {
    send(res, 'text/javascript; charset=utf-8', DASHBOARD_JS);
  }

  @Get('dashboard.css')
  style(@Res() res: Response): void {
    send(res, 'text/css; charset=utf-8', DASHBOARD_CSS);
  }

  @Get('uplot.min.js')
  uplot(@Res() res: Response): void {
    send(res, 'text/javascript; charset=utf-8', UPLOT_JS);
  }

  @Get('uplot.min.css')
  uplotStyle(@Res() res: Response): void {
    send(res, 'text/css; charset=utf-8', UPLOT_CSS);
  }
}

function send(res: Response, type: string, body: string | Buffer): void {
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'private, max-age=300');
  res.send(body);
}
