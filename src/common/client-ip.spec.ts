import type { IncomingMessage } from 'node:http';
import { clientIp } from './client-ip';

/** A request from `peer` with these X-Forwarded-For header values (Node joins repeated ones with ", "). */
function request(peer: string | undefined, ...xff: string[]): IncomingMessage {
  const headers = xff.length === 0 ? {} : { 'x-forwarded-for': xff.join(', ') };
  return { headers, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

describe(clientIp.name, () => {
  describe('with TRUST_PROXY', () => {
    const viaProxy = (...xff: string[]) => clientIp(request('10.0.0.1', ...xff), true);

    it('takes the last X-Forwarded-For entry: the one the proxy appended', () => {
      expect(viaProxy('198.51.100.7, 203.0.113.9')).toBe('203.0.113.9');
      expect(viaProxy('198.51.100.7', '203.0.113.9')).toBe('203.0.113.9');
      expect(viaProxy(' 203.0.113.9 ')).toBe('203.0.113.9');
    });

    it('falls back to the TCP peer without a usable entry', () => {
      expect(viaProxy()).toBe('10.0.0.1');
      expect(viaProxy('')).toBe('10.0.0.1');
      expect(viaProxy('203.0.113.9,')).toBe('10.0.0.1');
      expect(viaProxy(' , ')).toBe('10.0.0.1');
    });

    it.each([
      // one IPv4 client, however the address is written
      ['::ffff:203.0.113.9', '203.0.113.9'],
      ['::FFFF:cb00:7109', '203.0.113.9'],
      ['0:0:0:0:0:ffff:203.0.113.9', '203.0.113.9'],
      ['203.0.113.9:51234', '203.0.113.9'],
      ['[::ffff:203.0.113.9]:443', '203.0.113.9'],
      // one IPv6 client: case, zero compression, brackets, port and zone id do not make another
      ['2001:DB8::1', '2001:db8:0:0::/64'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0::/64'],
      ['[2001:db8::1]', '2001:db8:0:0::/64'],
      ['[2001:db8::1]:8080', '2001:db8:0:0::/64'],
      ['fe80::1%eth0', 'fe80:0:0:0::/64'],
      // one IPv6 client is a /64: the smallest block one end site gets (RFC 6177), whose addresses it picks itself
      ['2001:db8:0:0:aaaa:bbbb:cccc:dddd', '2001:db8:0:0::/64'],
      ['2001:db8:1:2::42', '2001:db8:1:2::/64'],
      ['1:2:0:4:5:6:7:8', '1:2:0:4::/64'],
      ['1:2::4:5:6:7:8', '1:2:0:4::/64'],
      ['::203.0.113.9', '0:0:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
    ])('counts %j as %j', (entry, client) => {
      expect(viaProxy(entry)).toBe(client);
    });

    it('keeps an entry that is no address as it is, at most 64 characters of it', () => {
      expect(viaProxy('unknown')).toBe('unknown');
      expect(viaProxy('[2001:db8::1]x')).toBe('[2001:db8::1]x');
      expect(viaProxy('203.0.113.9:port')).toBe('203.0.113.9:port');
      expect(viaProxy('x'.repeat(10_000))).toBe('x'.repeat(64));
    });
  });

  describe('without TRUST_PROXY', () => {
    it('takes the TCP peer and ignores X-Forwarded-For', () => {
      expect(clientIp(request('203.0.113.9', '198.51.100.7'), false)).toBe('203.0.113.9');
    });

    it('counts a dual-stack socket\'s IPv4-mapped peer as its IPv4 address, and an IPv6 peer by its /64', () => {
      expect(clientIp(request('::ffff:203.0.113.9'), false)).toBe('203.0.113.9');
      expect(clientIp(request('2001:db8::abcd'), false)).toBe('2001:db8:0:0::/64');
    });

    it('names a peer that has gone', () => {
      expect(clientIp(request(undefined), false)).toBe('unknown');
    });
  });
});
