import { BadRequestException, Controller, Delete, HttpException, HttpStatus, Inject, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiQueryModel } from '../common/api-query-model';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { GatewayErrorDto } from '../common/dto/error.dto';
import { canonicaliseRoute, findRoute, splitTarget } from '../places/place-routes';
import { ErrorAnswer } from '../places/nominatim/nominatim-request';
import { AdminTokenGuard } from './admin-token.guard';
import { CachePurgeService, isEntryKey, isPurgeablePrefix, PurgeResult, PurgeUnavailableError } from '../places/cache/cache-purge.service';
import { PurgeKeyQueryDto, PurgePrefixQueryDto, PurgeQuestionQueryDto } from './dto/purge-query.dto';
import { PurgeResponseDto } from './dto/purge-response.dto';

/** The one Swagger security scheme of the admin routes (declared in app.setup.ts). */
export const ADMIN_BEARER = 'admin';

/**
 * Cache purges for operators. Present only when ADMIN_TOKEN is set; every route needs
 * `Authorization: Bearer <ADMIN_TOKEN>`. Thin: parse, delegate to CachePurgeService, answer counts.
 */
@ApiTags('admin')
@ApiBearerAuth(ADMIN_BEARER)
@ApiUnauthorizedResponse({ description: 'No or wrong bearer token', type: GatewayErrorDto })
@ApiServiceUnavailableResponse({ description: 'Redis is unavailable: only this instance\'s L1 was purged (Retry-After)', type: GatewayErrorDto })
@UseGuards(AdminTokenGuard)
@Controller('admin/cache')
export class AdminController {
  constructor(
    private readonly purger: CachePurgeService,
    @Inject(cacheConfig.KEY) private readonly cacheCfg: CacheConfig,
  ) {}

  @Delete()
  @ApiOperation({
    summary: 'Purge one answer by its canonical key',
    description: 'Removes the entry from Redis and from the L1 of every instance (pub/sub broadcast).',
  })
  @ApiQueryModel(PurgeKeyQueryDto)
  @ApiOkResponse({ type: PurgeResponseDto })
  @ApiBadRequestResponse({ description: 'Not an answer key (places:v1:<endpoint>:…)', type: GatewayErrorDto })
  async purgeKey(@Req() req: Request, @Res() res: Response): Promise<void> {
    const key = single(req, 'key');
    if (!isEntryKey(key)) throw new BadRequestException('key must be an answer key: places:v1:<search|reverse|lookup|status|details>:…');
    await this.purge(res, { key }, () => this.purger.purgeKey(key));
  }

  @Delete('question')
  @ApiOperation({
    summary: 'Purge one answer by the question that produced it',
    description:
      '`path` is the route (`/api`, `/search`, `/reverse`, `/lookup`, `/status`); every other parameter, and the ' +
      'Accept-Language header, is the question as a client sends it. The gateway canonicalises it exactly as for a ' +
      'request, so every spelling of one question names the same entry. Example: `?path=/search&q=Berlin&format=json`.',
  })
  @ApiQueryModel(PurgeQuestionQueryDto)
  @ApiOkResponse({ type: PurgeResponseDto })
  @ApiBadRequestResponse({ description: 'Unknown path, or a question the route would reject', type: GatewayErrorDto })
  async purgeQuestion(@Req() req: Request, @Res() res: Response): Promise<void> {
    const params = new URLSearchParams(splitTarget(req.originalUrl).query);
    const path = single(req, 'path');
    params.delete('path');
    const route = findRoute(path);
    if (route === undefined) throw new BadRequestException('path must be one of /api, /search, /reverse, /lookup, /status');
    // Keyed as the same request would be: an accept-language parameter, else this request's header.
    const lang = req.headers['accept-language'];
    const canonical = canonicaliseRoute(route, params.toString(), typeof lang === 'string' ? lang : undefined, this.cacheCfg.reverseSnapMeters);
    if (!canonical.ok) throw new BadRequestException(`Not a valid question: ${errorText(canonical.error)}`);
    if (!canonical.request.cacheable) throw new BadRequestException(`Answers of ${canonical.request.upstreamPath} are never cached`);
    const key = canonical.request.key;
    await this.purge(res, { key }, () => this.purger.purgeKey(key));
  }

  @Delete('prefix')
  @ApiOperation({
    summary: 'Purge every answer whose key starts with a prefix',
    description:
      'SCAN MATCH + UNLINK in batches (never KEYS or FLUSHDB); only answer keys under `places:v1:` are removed, ' +
      'and the L1 of every instance is purged too. `places:v1:` purges every cached answer.',
  })
  @ApiQueryModel(PurgePrefixQueryDto)
  @ApiOkResponse({ type: PurgeResponseDto })
  @ApiBadRequestResponse({ description: 'The prefix does not start with places:v1:', type: GatewayErrorDto })
  async purgePrefix(@Req() req: Request, @Res() res: Response): Promise<void> {
    const prefix = single(req, 'prefix');
    if (!isPurgeablePrefix(prefix)) throw new BadRequestException('prefix must start with places:v1:');
    await this.purge(res, { prefix }, () => this.purger.purgePrefix(prefix));
  }

  /** Runs a purge and answers what it purged (`key` or `prefix`) with the counts; Redis unavailable: 503. */
  private async purge(res: Response, target: { key: string } | { prefix: string }, purge: () => Promise<PurgeResult>): Promise<void> {
    let result: PurgeResult;
    try {
      result = await purge();
    } catch (e) {
      if (!(e instanceof PurgeUnavailableError)) throw e;
      res.setHeader('Retry-After', '1');
      throw new HttpException(
        { error: 'Service Unavailable', code: 'redis_unavailable', message: `${e.message}; ${e.l1Deleted} L1 entries dropped here` },
        HttpStatus.SERVICE_UNAVAILABLE,
      );
    }
    const body: PurgeResponseDto = { ...target, ...result };
    res.setHeader('Cache-Control', 'no-store');
    res.status(200).json(body);
  }
}

/** Exactly one value of `name` in the query string (read raw: keys contain `&` and `=` once decoded). */
function single(req: Request, name: string): string {
  const values = new URLSearchParams(splitTarget(req.originalUrl).query).getAll(name);
  if (values.length !== 1 || values[0] === '') throw new BadRequestException(`Give exactly one ${name} parameter`);
  return values[0];
}

/** The message of one of the canonicaliser's Nominatim-shaped errors. */
function errorText(e: ErrorAnswer): string {
  try {
    const parsed = JSON.parse(e.body) as { message?: unknown; error?: { message?: unknown } };
    const message = parsed.error?.message ?? parsed.message;
    if (typeof message === 'string') return message;
  } catch {
    // text or XML
  }
  const xml = /<message>([^<]*)<\/message>/.exec(e.body);
  return xml ? xml[1] : e.body.replace(/^ERROR \d+: /, '');
}
