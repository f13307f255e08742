import { HttpService } from '@nestjs/axios';
import { AxiosError } from 'axios';
import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { GatewayError } from '../../common/gateway.errors';
import { nominatimConfig, NominatimConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { CanonicalRequest } from './nominatim-request';
import { FIRST_BACKOFF_MS, NominatimClient } from './nominatim.client';
import { CoolingDownError } from './pacer-errors';
import { UpstreamPacer } from './upstream-pacer';
import { UpstreamStatus } from './upstream-status';
import { UpstreamTarget, UPSTREAMS } from './upstream-target';

interface Reply {
  /** axios fails with this instead of answering */
  fails?: Error;
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

const SEARCH: CanonicalRequest = {
  endpoint: 'search',
  upstreamPath: '/search',
  upstreamQuery: 'format=json&q=secretplace',
  key: 'places:v1:search:format=json&q=secretplace',
  format: 'json',
  cacheable: true,
  resultKind: 'list',
  contentType: 'application/json; charset=utf-8',
};

const REDIRECT_PAGE = '<html><head><title>301 Moved Permanently</title></head><body>nginx</body></html>';

function target(baseUrl: string): UpstreamTarget {
  const pacer = {
    acquire: () => Promise.resolve({ waitedMs: 0, mode: 'local', sent: () => undefined }),
    coolDown: () => Promise.resolve(),
    cooldownRemainingMs: () => 0,
    waiting: 0,
  } as unknown as UpstreamPacer;
  return { baseUrl, host: new URL(baseUrl).host, maxRps: 1, pacer, status: new UpstreamStatus(pacer), backoffMs: FIRST_BACKOFF_MS, coolingSince: undefined };
}

describe(NominatimClient.name, () => {
  let warn: jest.SpyInstance;
  let asked: string[];
  let replies: Map<string, Reply>;
  /** Per host, answers given in turn (each a promise the test settles), for hosts without a fixed reply. */
  let pending: Map<string, Array<Reply | Promise<Reply>>>;
  let metrics: MetricsService;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    asked = [];
    replies = new Map();
    pending = new Map();
  });

  afterEach(() => warn.mockRestore());

  async function clientFor(targets: UpstreamTarget[]): Promise<NominatimClient> {
    const get = jest.fn((url: string, options: { maxRedirects?: number }) => {
      // Following a redirect is never wanted: NOMINATIM_URL is the operator's, a Location could be anything.
      expect(options.maxRedirects).toBe(0);
      asked.push(url);
      const host = new URL(url).host;
      const next = replies.get(host) ?? pending.get(host)!.shift()!;
      if ('then' in next) return next.then(answerWith);
      return answerWith(next);
    });
    const answerWith = (reply: Reply) => {
      if (reply.fails) return Promise.reject(reply.fails);
      return Promise.resolve({ status: reply.status, headers: reply.headers ?? {}, data: new TextEncoder().encode(reply.body ?? '').buffer });
    };
    const config = { timeoutMs: 1000, maxBytes: 1 << 20, userAgent: 'places-cache-test', email: 'ops@example.org', backoffMaxMs: 30_000 } as NominatimConfig;
    const moduleRef = await Test.createTestingModule({
      providers: [
        NominatimClient,
        MetricsService,
        { provide: HttpService, useValue: { axiosRef: { get } } },
        { provide: nominatimConfig.KEY, useValue: config },
        { provide: UPSTREAMS, useValue: targets },
      ],
    }).compile();
    metrics = moduleRef.get(MetricsService);
    return moduleRef.get(NominatimClient);
  }

  const failure = (p: Promise<unknown>): Promise<GatewayError> =>
    p.then(
      () => {
        throw new Error('expected the fetch to fail');
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(GatewayError);
        return e as GatewayError;
      },
    );

  describe('an upstream redirect', () => {
    it.each([301, 302, 303, 304, 307, 308])('turns a %d into a 502 upstream_error, counted as a failure, the Location in the warn log', async (status) => {
      const one = target('http://nominatim.example');
      replies.set('nominatim.example', {
        status,
        headers: { location: 'https://nominatim.example/search?format=json&q=secretplace&email=ops%40example.org', 'content-type': 'text/html' },
        body: REDIRECT_PAGE,
      });
      const client = await clientFor([one]);

      const e = await failure(client.fetch(SEARCH));
      expect(e.getStatus()).toBe(502);
      expect(e.code).toBe('upstream_error');
      expect(e.upstreamStatus).toBe(status);
      expect(e.getResponse()).toEqual({
        statusCode: 502,
        error: 'Bad Gateway',
        code: 'upstream_error',
        message: `Nominatim request failed: status ${status} (a redirect, not followed)`,
      });

      expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([
        expect.stringMatching(
          new RegExp(
            `^Nominatim nominatim\\.example search answered ${status} after \\d+ ms: ` +
              'a redirect to https://nominatim\\.example/search, not followed; set NOMINATIM_URL to https://nominatim\\.example$',
          ),
        ),
      ]);
      expect(String(warn.mock.calls[0][0])).not.toMatch(/secretplace|ops/);

      expect(one.status.snapshot()).toMatchObject({ state: 'failing', consecutiveFailures: 1, lastCall: { status } });
      const counted = (await metrics.upstreamRequests.get()).values;
      expect(counted).toEqual([expect.objectContaining({ value: 1, labels: { endpoint: 'search', status: String(status), upstream: 'nominatim.example' } })]);
    });

    it('says so when the redirect has no Location', async () => {
      replies.set('nominatim.example', { status: 302, body: REDIRECT_PAGE });
      const client = await clientFor([target('http://nominatim.example')]);
      expect((await failure(client.fetch(SEARCH))).getStatus()).toBe(502);
      expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([
        expect.stringMatching(/answered 302 after \d+ ms: a redirect without a Location, not followed; check NOMINATIM_URL$/),
      ]);
    });

    it('passes a redirecting upstream of several over for the next, and then for the next request too', async () => {
      const first = target('http://own.example');
      const second = target('http://public.example');
      replies.set('own.example', { status: 301, headers: { location: 'https://own.example/search' }, body: REDIRECT_PAGE });
      replies.set('public.example', { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '[]' });
      const client = await clientFor([first, second]);

      expect((await client.fetch(SEARCH)).status).toBe(200);
      expect((await client.fetch(SEARCH)).status).toBe(200);
      expect(asked.map((u) => new URL(u).host)).toEqual(['own.example', 'public.example', 'public.example']);
      expect(first.status.snapshot().state).toBe('failing');
      expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([
        expect.stringMatching(/^Nominatim own\.example search answered 301 after \d+ ms: a redirect to https:\/\/own\.example\/search, not followed; set NOMINATIM_URL to https:\/\/own\.example$/),
        expect.stringMatching(/^Upstream own\.example failed \(upstream_error\); passed over for \d+ s$/),
      ]);
    });
  });

  it('passes a 5xx on as a 502 with the upstream status, logged at warn without advice', async () => {
    replies.set('nominatim.example', { status: 503, body: 'Service Unavailable' });
    const client = await clientFor([target('http://nominatim.example')]);
    const e = await failure(client.fetch(SEARCH));
    expect([e.getStatus(), e.code, e.upstreamStatus]).toEqual([502, 'upstream_error', 503]);
    expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([expect.stringMatching(/^Nominatim nominatim\.example search answered 503 after \d+ ms$/)]);
  });

  it("passes Nominatim's own 4xx answers back as they are", async () => {
    replies.set('nominatim.example', { status: 400, headers: { 'content-type': 'application/json' }, body: '{"error":"bad"}' });
    const one = target('http://nominatim.example');
    const client = await clientFor([one]);
    const answer = await client.fetch(SEARCH);
    expect(answer.status).toBe(400);
    expect(answer.body.toString()).toBe('{"error":"bad"}');
    expect(warn).not.toHaveBeenCalled();
    expect(one.status.snapshot().state).toBe('ok');
  });
  describe('refusals of requests already in flight (one cool-down episode)', () => {
    /** A target whose pacer keeps the longest cool-down it is given, as the real one does. */
    function coolingTarget(): { one: UpstreamTarget; given: number[] } {
      const one = target('http://nominatim.example');
      const given: number[] = [];
      let until = 0;
      one.pacer.coolDown = (ms: number) => Promise.resolve(void (given.push(ms), (until = Math.max(until, Date.now() + ms))));
      one.pacer.cooldownRemainingMs = () => Math.max(0, until - Date.now());
      return { one, given };
    }

    const inFlight = async (client: NominatimClient, answers: Array<() => void>) => {
      const calls = answers.map(() => failure(client.fetch(SEARCH)));
      await new Promise((resolve) => setImmediate(resolve));
      for (const answer of answers) {
        answer();
        await new Promise((resolve) => setImmediate(resolve));
      }
      return Promise.all(calls);
    };

    const later = (reply: Reply): [Promise<Reply>, () => void] => {
      let settle!: () => void;
      return [new Promise<Reply>((resolve) => (settle = () => resolve(reply))), () => settle()];
    };

    it('do not double the back-off: one cool-down at the first back-off', async () => {
      const { one, given } = coolingTarget();
      const replies3 = [1, 2, 3].map(() => later({ status: 429, body: '' }));
      pending.set('nominatim.example', replies3.map(([p]) => p));
      const client = await clientFor([one]);
      const errors = await inFlight(client, replies3.map(([, answer]) => answer));
      expect(errors.map((e) => [e.code, e.retryAfterSeconds])).toEqual(Array(3).fill(['upstream_refused', FIRST_BACKOFF_MS / 1000]));
      expect(given).toEqual([FIRST_BACKOFF_MS]);
      expect(one.backoffMs).toBe(2 * FIRST_BACKOFF_MS);
    });

    it('a longer Retry-After one of them brings extends the cool-down; a shorter one does not shorten it', async () => {
      const { one, given } = coolingTarget();
      const replies3 = [
        later({ status: 429, body: '' }),
        later({ status: 429, headers: { 'retry-after': '20' }, body: '' }),
        later({ status: 429, headers: { 'retry-after': '1' }, body: '' }),
      ];
      pending.set('nominatim.example', replies3.map(([p]) => p));
      const client = await clientFor([one]);
      const errors = await inFlight(client, replies3.map(([, answer]) => answer));
      expect(errors.map((e) => e.retryAfterSeconds)).toEqual([5, 20, 20]);
      expect(given).toEqual([FIRST_BACKOFF_MS, 20_000, 1_000]);
      expect(one.pacer.cooldownRemainingMs()).toBeGreaterThan(19_000);
      expect(one.backoffMs).toBe(2 * FIRST_BACKOFF_MS);
    });
  });

  describe('with several upstreams, by the verdict on each', () => {
    const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

    it('passes over one that sends a 200 not in the format asked for, for this request and the next', async () => {
      const first = target('http://own.example');
      const second = target('http://public.example');
      replies.set('own.example', { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>login</html>' });
      replies.set('public.example', { status: 200, headers: JSON_TYPE, body: '[]' });
      const client = await clientFor([first, second]);

      expect((await client.fetch(SEARCH)).body.toString()).toBe('[]');
      expect((await client.fetch(SEARCH)).body.toString()).toBe('[]');
      expect(asked.map((u) => new URL(u).host)).toEqual(['own.example', 'public.example', 'public.example']);
      expect(first.status.snapshot()).toMatchObject({ state: 'failing', lastCall: { status: 'invalid' } });
      expect(warn.mock.calls.map((c: unknown[]) => c[0])).toContainEqual(expect.stringMatching(/^Upstream own\.example failed \(upstream_invalid\); passed over for 1 s$/));
    });

    it('stops at an answer too large for UPSTREAM_MAX_BYTES: the next would send the same, and the upstream works', async () => {
      const first = target('http://own.example');
      const second = target('http://public.example');
      replies.set('own.example', { status: 200, fails: new AxiosError('maxContentLength size of 1048576 exceeded', AxiosError.ERR_BAD_RESPONSE) });
      replies.set('public.example', { status: 200, headers: JSON_TYPE, body: '[]' });
      const client = await clientFor([first, second]);

      const e = await failure(client.fetch(SEARCH));
      expect([e.getStatus(), e.code]).toEqual([502, 'upstream_too_large']);
      expect(asked.map((u) => new URL(u).host)).toEqual(['own.example']);
      expect(first.status.snapshot()).toMatchObject({ state: 'ok', consecutiveFailures: 0, lastCall: { status: 'too_large' } });
      const counted = (await metrics.upstreamRequests.get()).values;
      expect(counted).toEqual([expect.objectContaining({ value: 1, labels: { endpoint: 'search', status: 'too_large', upstream: 'own.example' } })]);
    });

    it('skips an upstream demoted while the miss was at an earlier one: nothing is sent to it until its back-off ends', async () => {
      const [first, second, third] = ['own', 'mirror', 'public'].map((h) => target(`http://${h}.example`));
      let timeOut!: () => void;
      const slow = new Promise<Reply>((_resolve, reject) => (timeOut = () => reject(new AxiosError('timeout of 1000ms exceeded', 'ECONNABORTED'))));
      pending.set('own.example', [slow, { status: 500, body: '' }]);
      replies.set('mirror.example', { status: 500, body: '' });
      replies.set('public.example', { status: 200, headers: JSON_TYPE, body: '[]' });
      const client = await clientFor([first, second, third]);

      // The first miss waits for own; the second fails there and at mirror, demoting both.
      const firstMiss = client.fetch(SEARCH);
      await new Promise((resolve) => setImmediate(resolve));
      expect((await client.fetch(SEARCH)).body.toString()).toBe('[]');
      expect(asked.map((u) => new URL(u).host)).toEqual(['own.example', 'own.example', 'mirror.example', 'public.example']);
      // own times out for the first miss now: mirror is still passed over (1 s), so it goes to public.
      timeOut();
      expect((await firstMiss).body.toString()).toBe('[]');
      expect(asked.map((u) => new URL(u).host).slice(4)).toEqual(['public.example']);
    });

    it('an answer to a request sent before a 429 neither ends its cool-down nor undoes its demotion', async () => {
      const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      try {
        const [first, second] = ['own', 'public'].map((h) => target(`http://${h}.example`));
        // own's pacer keeps the cool-down it is given, as the real one does.
        let coolingUntil = 0;
        first.pacer.coolDown = (ms: number) => Promise.resolve(void (coolingUntil = Date.now() + ms));
        first.pacer.acquire = () =>
          coolingUntil > Date.now() ? Promise.reject(new CoolingDownError(Math.ceil((coolingUntil - Date.now()) / 1000))) : Promise.resolve({ waitedMs: 0, mode: 'local', sent: () => undefined });
        let answer!: () => void;
        const slow = new Promise<Reply>((resolve) => (answer = () => resolve({ status: 200, headers: JSON_TYPE, body: '["own"]' })));
        pending.set('own.example', [slow, { status: 429, headers: { 'retry-after': '20' }, body: '' }]);
        replies.set('public.example', { status: 200, headers: JSON_TYPE, body: '["public"]' });
        const client = await clientFor([first, second]);

        // A slow question is in flight at own when the next one is refused there: own is passed over for 20 s.
        const inFlight = client.fetch(SEARCH);
        await new Promise((resolve) => setImmediate(resolve));
        expect((await client.fetch(SEARCH)).body.toString()).toBe('["public"]');
        answer();
        expect((await inFlight).body.toString()).toBe('["own"]');

        // That answer was sent before the refusal: own is still refusing, for 20 s.
        expect((await client.fetch(SEARCH)).body.toString()).toBe('["public"]');
        expect(asked.map((u) => new URL(u).host)).toEqual(['own.example', 'own.example', 'public.example', 'public.example']);
        expect(log.mock.calls.map((c: unknown[]) => c[0])).not.toContainEqual(expect.stringMatching(/accepts requests again/));
        // One refusal, one demotion: the misses its cool-down turns away move on without another.
        expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([expect.stringMatching(/^Upstream own\.example failed \(upstream_refused\); passed over for 20 s$/)]);
      } finally {
        log.mockRestore();
      }
    });

    it("demotes a refusing upstream for the Retry-After it sent, not another answer's", async () => {
      const first = target('http://own.example');
      const second = target('http://public.example');
      replies.set('own.example', { status: 429, headers: { 'retry-after': '7' }, body: '' });
      replies.set('public.example', { status: 503, headers: { 'retry-after': '2' }, body: '' });
      const client = await clientFor([first, second]);

      const e = await failure(client.fetch(SEARCH));
      expect(e.code).toBe('upstream_error');
      expect(e.retryAfterSeconds).toBe(2); // a 503's Retry-After: maintenance, a cool-down as after a 429
      expect(warn.mock.calls.map((c: unknown[]) => c[0])).toEqual([
        expect.stringMatching(/^Upstream own\.example failed \(upstream_refused\); passed over for 7 s$/),
        expect.stringMatching(/^Nominatim public\.example search answered 503 after \d+ ms; sending nothing to it for 2 s \(Retry-After\)$/),
        expect.stringMatching(/^Upstream public\.example failed \(upstream_error\); passed over for 2 s$/),
      ]);
    });
  });
});
