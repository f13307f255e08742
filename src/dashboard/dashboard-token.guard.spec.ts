import { presentedToken } from './dashboard-token.guard';

describe('presentedToken', () => {
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

  it('reads a bearer token, or the password of Basic credentials whatever the user name', () => {
    expect(presentedToken('Bearer abc.def')).toBe('abc.def');
    expect(presentedToken(basic('ops:s3cret:with:colons'))).toBe('s3cret:with:colons');
    expect(presentedToken(basic(':only-password'))).toBe('only-password');
  });

  it('refuses anything else', () => {
    expect(presentedToken(undefined)).toBeNull();
    expect(presentedToken('Basic !!!')).toBeNull();
    expect(presentedToken(basic('no-colon'))).toBeNull();
    expect(presentedToken('Digest x')).toBeNull();
  });
});
