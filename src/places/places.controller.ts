import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { writeAnswer } from './answer-writer';
import { parseRequestDirectives } from './cache-control';
import { upstreamFailed } from './gateway.errors';
import { canonicaliseRoute, findRoute, PlaceRoute, splitTarget } from './place-routes';
import { PlacesCacheService } from './places-cache.service';
import { ApiDocs, DetailsDocs, LookupDocs, ReverseDocs, SearchDocs, StatusDocs } from './places.openapi';

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
  @ApiDocs()
  async api(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get('search')
  @SearchDocs()
  async search(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get('reverse')
  @ReverseDocs()
  async reverse(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get('lookup')
  @LookupDocs()
  async lookup(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get('status')
  @StatusDocs()
  async status(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  @Get('details')
  @DetailsDocs()
  async details(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  /** Nominatim's old `.php` names and `/` (search): the same operations, documented once under their main path. */
  @Get(['', 'search.php', 'reverse.php', 'lookup.php', 'status.php', 'details.php'])
  @ApiExcludeEndpoint()
  async alias(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  private async answer(req: Request, res: Response): Promise<void> {
    const { path, query } = splitTarget(req.originalUrl);
    const route = findRoute(path) as PlaceRoute;
    const canonical = canonicaliseRoute(route, query, req.headers['accept-language'], this.config.reverseSnapMeters);
    if (!canonical.ok) {
      const e = canonical.error;
      res.status(e.status).setHeader('Content-Type', e.contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.end(e.body);
      return;
    }
    const directives =
      this.config.clientCacheControl === 'honour'
        ? parseRequestDirectives(req.headers['cache-control'], req.headers.pragma)
        : undefined;
    const resolution =
      directives === undefined ? await this.places.resolve(canonical.request, req) : await this.places.resolveDirected(canonical.request, directives);
    if (route.variant === 'api' && resolution.answer.status !== 200) {
      throw upstreamFailed(`Nominatim answered ${resolution.answer.status}`, resolution.answer.status);
    }
    writeAnswer(req, res, resolution, route.variant, this.config.compressMinBytes);
  }
}
