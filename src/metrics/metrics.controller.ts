import { Controller, Get, Header, Res, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { GatewayErrorDto } from '../common/dto/error.dto';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from './metrics.service';

/** The Swagger security scheme of /metrics (declared in app.setup.ts). */
export const METRICS_BEARER = 'metrics';

@ApiTags('operations')
@ApiExtraModels(GatewayErrorDto)
@ApiBearerAuth(METRICS_BEARER)
@UseGuards(MetricsTokenGuard)
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'This instance\'s counters, histograms and gauges in the Prometheus text format (requests by route and status, ' +
      'cache outcomes, upstream calls and latency, pacing queue, Redis errors and connection, L1 size, Node.js process ' +
      'metrics). Every name starts with `places_`; see docs/operations.md for the list. With METRICS_TOKEN set, ' +
      'send `Authorization: Bearer <METRICS_TOKEN>`.',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text exposition format 0.0.4',
    content: {
      'text/plain': {
        schema: { type: 'string' },
        example: '# HELP places_cache_outcomes_total What the cache did for each place request\n' +
          '# TYPE places_cache_outcomes_total counter\nplaces_cache_outcomes_total{outcome="hit",tier="l1"} 42\n',
      },
    },
  })
  // Its own content type: @ApiProduces above would otherwise document the guard's JSON 401 as text/plain.
  @ApiUnauthorizedResponse({
    description: 'METRICS_TOKEN is set and the bearer token is missing or wrong',
    content: { 'application/json': { schema: { $ref: getSchemaPath(GatewayErrorDto) } } },
  })
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() res: Response): Promise<void> {
    const body = await this.metrics.scrape();
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(body);
  }
}
