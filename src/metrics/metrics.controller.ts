import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsService } from './metrics.service';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'This instance\'s counters, histograms and gauges in the Prometheus text format (requests by route and status, ' +
      'cache outcomes, upstream calls and latency, pacing queue, Redis errors and connection, L1 size, Node.js process ' +
      'metrics). Every name starts with `places_`; see docs/operations.md for the list.',
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
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() res: Response): Promise<void> {
    const body = await this.metrics.scrape();
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(body);
  }
}
