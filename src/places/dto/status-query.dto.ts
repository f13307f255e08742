/** Query of GET /status. Documentation only: the shared canonicaliser (nominatim-request.ts) validates. */
export class StatusQueryDto {
  /** `text` answers `OK` (200) or `ERROR: <message>` (500); `json` always answers 200 with a `status` field. */
  format?: 'text' | 'json' = 'text';

  /**
   * With format=json: wrap the answer in a call of this function (JSONP), e.g. `handleStatus`.
   */
  json_callback?: string;
}
