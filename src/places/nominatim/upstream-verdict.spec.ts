import { UpstreamResult, verdictOf } from './upstream-verdict';

describe('verdictOf', () => {
  it.each<[UpstreamResult, string]>([
    [200, 'answered'],
    [204, 'failed'],
    [206, 'failed'],
    [202, 'failed'],
    [400, 'answered'],
    [404, 'answered'],
    [410, 'answered'],
    ['too_large', 'answered'],
    [429, 'refused'],
    [403, 'refused'],
    [500, 'failed'],
    [502, 'failed'],
    [503, 'failed'],
    [599, 'failed'],
    [301, 'failed'],
    [302, 'failed'],
    [304, 'failed'],
    [307, 'failed'],
    [308, 'failed'],
    [101, 'failed'],
    ['timeout', 'failed'],
    ['error', 'failed'],
    ['invalid', 'failed'],
  ])('%s: %s', (result, verdict) => {
    expect(verdictOf(result)).toBe(verdict);
  });
});
