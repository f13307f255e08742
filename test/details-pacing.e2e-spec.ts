import { useApp, useE2e } from './support/app-harness';
import { rawGet } from './support/raw-http';
import { watchObserverLag } from './support/traffic';

/**
 * README, routes table: `/details` is passed through, never cached, but "still paced". Its upstream
 * calls take slots from the same pacer as the cached routes' misses, so a mix of both never reaches
 * Nominatim closer together than NOMINATIM_MAX_RPS allows. (Kept out of pacing*.e2e-spec.ts, which
 * are about the pacer itself.)
 */
const MAX_RPS = 5;
/** 1000 / NOMINATIM_MAX_RPS, less the pacer's 5 % start guard and a millisecond of clock rounding (as web-concurrency.e2e-spec.ts). */
const MIN_GAP_MS = (1000 / MAX_RPS) * 0.95 - 1;

jest.setTimeout(60_000);

describe('/details upstream pacing (e2e)', () => {
  const e2e = useE2e();
  const svc = useApp(e2e, { NOMINATIM_MAX_RPS: String(MAX_RPS) });

  it('a burst of /details and /search misses together: every upstream call spaced by the one pacer, /details included', async () => {
    const paths = [
      '/details?place_id=100008&format=json',
      '/search?q=details%20pacing%201&format=json',
      '/details?place_id=100008&format=json',
      '/details.php?place_id=100008&format=json',
      '/search?q=details%20pacing%202&format=json',
      '/details?place_id=100008&format=json',
    ];
    const from = e2e.fake.requests.length;
    const lag = watchObserverLag();
    const answers = await Promise.all(paths.map((p) => rawGet(`${svc.url}${p}`)));
    const lateMs = lag.stop();
    expect(answers.map((a) => a.status)).toEqual(Array(paths.length).fill(200));
    const sent = e2e.fake.requests.slice(from).sort((a, b) => a.startedAtHr - b.startedAtHr);
    // /details is never cached nor joined: each of the four went upstream.
    expect(sent.filter((r) => r.path.startsWith('/details'))).toHaveLength(4);
    expect(sent).toHaveLength(paths.length);
    const tooClose = sent
      .slice(1)
      .map((r, i) => ({ gap: r.startedAtHr - sent[i].startedAtHr, pair: `${sent[i].path} → ${r.path}` }))
      .filter(({ gap }) => gap < MIN_GAP_MS - lateMs)
      .map(({ gap, pair }) => `${gap.toFixed(1)} ms: ${pair} (the fake's stamps up to ${lateMs.toFixed(1)} ms late)`);
    expect(tooClose).toEqual([]);
  });
});
