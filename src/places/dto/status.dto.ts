/** GET /status?format=json: always HTTP 200; `status` 0 means the database works. */
export class StatusDto {
  /**
   * 0 when Nominatim works, else an error number (e.g. 700 no database connection).
   * @example 0
   */
  status: number;

  /** @example OK */
  message: string;

  /**
   * When the data was last updated (ISO 8601), when Nominatim works.
   * @example "2025-01-01T00:00:00+00:00"
   */
  data_updated?: string;

  /** @example 5.1.0 */
  software_version?: string;

  /** @example 5.1.0-0 */
  database_version?: string;
}
