import { Controller, Get, Inject, NotFoundException, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { clientIp } from '../common/client-ip';
import { appConfig, AppConfig, cacheConfig, CacheConfig } from '../config/configuration';
import { writeDecision } from './answer-writer';
import { Exchange } from './exchange';
import { PlacePipeline } from './place-pipeline';
import { ALIAS_PATHS, findRoute, splitTarget } from './place-routes';
import { ApiDocs, DetailsDocs, LookupDocs, ReverseDocs, SearchDocs, StatusDocs } from './places.openapi';

/**
 * The pipeline's other entry, and the routes' Swagger documentation. The front door takes every
 * GET/HEAD of a place route itself; what reaches Nest here goes the same way: one exchange, the same
 * pipeline, the same writer.
 */
@Controller()
export class PlacesController {
  constructor(
    private readonly pipeline: PlacePipeline,
    @Inject(cacheConfig.KEY) private readonly config: CacheConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
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
  @Get(ALIAS_PATHS)
  @ApiExcludeEndpoint()
  async alias(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res);
  }

  private async answer(req: Request, res: Response): Promise<void> {
    const { path, query } = splitTarget(req.originalUrl);
    const x = new Exchange(req, String(req.headers['x-request-id']), req.originalUrl, path, query, performance.now(), (r) => clientIp(r, this.app.trustProxy));
    const route = findRoute(path);
    // Express routes `//` to `/` (one trailing slash ignored); findRoute, the front door's router, does not.
    if (route === undefined) throw new NotFoundException(`Cannot ${req.method} ${req.originalUrl}`);
    x.route = route;
    const decision = await this.pipeline.run(x);
    writeDecision(x, res, decision, this.config.compressMinBytes);
  }
}
