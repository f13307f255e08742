/** What a purge did. */
export class PurgeResponseDto {
  /**
   * The key purged (key and question routes).
   * @example places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=berlin
   */
  key?: string;

  /**
   * The prefix purged (prefix route).
   * @example places:v1:search:
   */
  prefix?: string;

  /**
   * Entries removed from the shared cache (Redis; the memory store without REDIS_URL).
   * @example 1
   */
  deleted: number;

  /**
   * Entries dropped from this instance's in-process L1. Every other instance drops its own copies when
   * it receives the purge broadcast.
   * @example 1
   */
  l1Deleted: number;

  /**
   * False when a prefix purge ran out of its time budget (20 s): run it again to finish.
   * @example true
   */
  complete: boolean;
}
