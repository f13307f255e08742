import { findRoute } from './place-routes';
import { Questions } from './questions';

describe(Questions.name, () => {
  const search = findRoute('/search')!;

  it('canonicalises a valid target once: the same target gives the same question, holding its L1 slot and log hash', () => {
    const questions = new Questions(16);
    const first = questions.of(search, '/search?q=Berlin', 'q=Berlin', undefined);
    expect('ok' in first).toBe(false);
    const again = questions.of(search, '/search?q=Berlin', 'q=Berlin', undefined);
    expect(again).toBe(first);
  });

  it('keeps one entry per target and Accept-Language, with equal keys for equal questions', () => {
    const questions = new Questions(16);
    const de = questions.of(search, '/search?q=Berlin', 'q=Berlin', 'de');
    const en = questions.of(search, '/search?q=Berlin', 'q=Berlin', 'en');
    const spelled = questions.of(search, '/search?q=%20berlin', 'q=%20berlin', 'de');
    expect(de).not.toBe(en);
    expect(spelled).not.toBe(de);
    if ('ok' in de || 'ok' in en || 'ok' in spelled) throw new Error('expected questions');
    expect(spelled.request.key).toBe(de.request.key);
    expect(en.request.key).not.toBe(de.request.key);
  });

  it("returns Nominatim's error for an invalid target, and does not remember it", () => {
    const questions = new Questions(16);
    const bad = questions.of(search, '/search?format=nope', 'format=nope', undefined);
    if (!('ok' in bad)) throw new Error('expected an error');
    expect(bad.error.status).toBe(400);
    expect(questions.of(search, '/search?format=nope', 'format=nope', undefined)).not.toBe(bad);
  });

  it('does not remember an uncacheable question (/details), and forgets everything when full', () => {
    const questions = new Questions(2);
    const details = findRoute('/details')!;
    const d = questions.of(details, '/details?place_id=1', 'place_id=1', undefined);
    expect(questions.of(details, '/details?place_id=1', 'place_id=1', undefined)).not.toBe(d);
    const a = questions.of(search, '/search?q=a', 'q=a', undefined);
    questions.of(search, '/search?q=b', 'q=b', undefined);
    questions.of(search, '/search?q=c', 'q=c', undefined);
    expect(questions.of(search, '/search?q=a', 'q=a', undefined)).not.toBe(a);
  });
});
