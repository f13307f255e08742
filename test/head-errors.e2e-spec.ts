import { RunningApp, startApp, useFake } from './support/app-harness';
import { RawAnswer, rawRequest } from './support/raw-http';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(60_000);

/**
 * RFC 9110 9.3.2: HEAD answers with the header fields GET would, without the content; 8.6: a
 * Content-Length on it must be the length GET's content would have. Every kind of error, whichever
 * code wrote it: the front door (invalid question, 414, upstream failure) and Nest (404, guards).
 */
// CORS for any origin: the front door's headers go out with the answer's; with listed origins the
// cors middleware sets them first. Both ways reach the same writers.
describe.each([
  { cors: 'for any origin', CORS_ORIGINS: undefined },
  { cors: 'for listed origins', CORS_ORIGINS: 'https://app.example' },
])('HEAD of an error answer, CORS $cors (e2e)', ({ CORS_ORIGINS }) => {
  const upstream = useFake();
  let svc: RunningApp;

  beforeAll(async () => {
    svc = await startApp({ NOMINATIM_URL: upstream.url, MAX_URL_BYTES: '512', METRICS_TOKEN: 'metrics-secret-token-0123456789', CORS_ORIGINS });
  });

  afterAll(() => svc?.close());

  beforeEach(() => upstream.reset());

  async function getThenHead(path: string, before?: () => void): Promise<[RawAnswer, RawAnswer]> {
    before?.();
    const get = await rawRequest('GET', `${svc.url}${path}`);
    before?.();
    const head = await rawRequest('HEAD', `${svc.url}${path}`);
    return [get, head];
  }

  const cases: Array<{ name: string; path: string; status: number; before?: () => void }> = [
    { name: 'invalid question, Nominatim text format', path: '/search?q=Berlin&format=bogus', status: 400 },
    { name: 'invalid question, Nominatim JSON format', path: '/reverse?lat=abc&lon=1&format=json', status: 400 },
    { name: 'invalid question, /api', path: '/api', status: 400 },
    { name: 'request target too long', path: `/search?q=${'x'.repeat(600)}`, status: 414 },
    { name: 'upstream failure', path: '/api?q=Upstream%20down', status: 502, before: () => upstream.failNext(1, { status: 500 }) },
    { name: 'unknown path (Nest)', path: '/nothing/here', status: 404 },
    { name: 'a path only DELETE has (Nest)', path: '/admin/cache/prefix', status: 404 },
    { name: 'guarded endpoint without its token (Nest)', path: '/metrics', status: 401 },
    { name: 'undecodable path (Nest)', path: '/docs/%E0', status: 404 },
  ];

  it.each(cases)('$name: HEAD has GET status and headers, Content-Length included, and no body', async ({ path, status, before }) => {
    const [get, head] = await getThenHead(path, before);
    expect([get.status, head.status]).toEqual([status, status]);
    expect(get.body.length).toBeGreaterThan(0);
    expect(get.headers['content-length']).toBe(String(get.body.length));
    expect(head.body).toHaveLength(0);
    const perAnswer = new Set(['x-request-id', 'date']);
    const fields = (a: RawAnswer) => Object.fromEntries(Object.entries(a.headers).filter(([n]) => !perAnswer.has(n)));
    expect(fields(head)).toEqual(fields(get));
  });
});
