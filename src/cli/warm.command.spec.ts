import { questionOf } from './warm.command';

describe('warm questions', () => {
  it('reads free text as an /api question and a line starting with / as that request; skips blanks and comments', () => {
    expect(questionOf('  Berlin ')).toMatchObject({ ok: true, request: { key: expect.stringContaining('q=berlin') } });
    expect(questionOf('/reverse?lat=52.52&lon=13.40&format=json')).toMatchObject({ ok: true, request: { endpoint: 'reverse' } });
    expect(questionOf('')).toBeUndefined();
    expect(questionOf('# a comment')).toBeUndefined();
  });

  it('names a bad line without writing its control bytes raw to the terminal', () => {
    const q = questionOf('/no\u001b[2Jwhere\r?q=x');
    expect(q).toEqual({ ok: false, reason: expect.stringMatching(/^\/no\\u001b\[2Jwhere\\r is not a Nominatim endpoint/) });
  });
});
