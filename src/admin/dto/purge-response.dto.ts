import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class PurgeResponseDto {
  /** The key purged (key and question routes). */
  @ApiPropertyOptional({ example: 'places:v1:search:format=jsonv2&limit=10&q=berlin' })
  key?: string;

  /** The prefix purged (prefix route). */
  @ApiPropertyOptional({ example: 'places:v1:search:' })
  prefix?: string;

  /** Entries removed from the shared cache (Redis; the memory store without REDIS_URL). */
  @ApiProperty({ example: 1 })
  deleted: number;

  /** Entries dropped from this instance's in-process L1. Every other instance drops its copies on the purge broadcast. */
  @ApiProperty({ example: 1 })
  l1Deleted: number;

  /** False when a prefix purge ran out of its time budget (20 s): run it again to finish. */
  @ApiProperty({ example: true })
  complete: boolean;
}

/** The one error shape of every route. */
export class ErrorResponseDto {
  @ApiProperty({ example: 401 })
  statusCode: number;

  @ApiProperty({ example: 'Unauthorized' })
  error: string;

  @ApiProperty({ example: 'Send Authorization: Bearer <ADMIN_TOKEN>' })
  message: string;

  @ApiPropertyOptional({ example: 'redis_unavailable' })
  code?: string;
}
