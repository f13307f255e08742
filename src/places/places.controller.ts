import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { writeAnswer } from './answer-writer';
import { upstreamFailed } from './gateway.errors';
import { canonicaliseRoute, findRoute, PlaceRoute, splitTarget } from './place-routes';
import { PlacesCacheService } from './places-cache.service';

/**
 * Thin: canonicalise (which validates), delegate to the cache-aside service, write the answer.
 * The routes here see only what the front door did not answer from cache.
 */
@Controller()
export class PlacesController {
  constructor(
    private readonly places: PlacesCacheService,
    @Inject(cacheConfig.KEY) private readonly config: CacheConfig,
  ) {}

  @Get('api')
  async api(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get(['search', 'search.php', ''])
  async search(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get(['reverse', 'reverse.php'])
  async reverse(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get(['lookup', 'lookup.php'])
  async lookup(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get(['status', 'status.php'])
  async status(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get(['details', 'details.php'])
  async details(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  private async answer(req: Request, res: Response): Promise<void> {
    const { path, query } = splitTarget(req.originalUrl);
    const route = findRoute(path) as PlaceRoute;
    const canonical = canonicaliseRoute(route, query, req.headers['accept-language']);
    if (!canonical.ok) {
      const e = canonical.error;
      res.status(e.status).setHeader('Content-Type', e.contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.end(e.body);
      return;
    }
    const resolution = await this.places.resolve(canonical.request);
    if (route.variant === 'api' && resolution.answer.status !== 200) {
      throw upstreamFailed(`Nominatim answered ${resolution.answer.status}`, resolution.answer.status);
    }
    writeAnswer(req, res, resolution, route.variant, this.config.compressMinBytes);
  }
}
