/** Client addresses, trusted proxies and forwarding headers (util/ip.ts), and the file-descriptor budget (util/fd-limit.ts). */
import { describe, expect, it } from 'vitest';
import { connectionBudget, FALLBACK_FD_LIMIT, readFdLimit } from '../src/util/fd-limit.js';
import { ADDRESS_MEMO, addressSet, clientAddress, forwardedChain, isLoopbackHost, isLoopbackRequest, normalizeIp } from '../src/util/ip.js';

describe('addresses', () => {
  it('normalises IPv4-mapped IPv6 and recognises loopback hosts', () => {
    expect(normalizeIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeIp('2001:DB8::1')).toBe('2001:db8::1');
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.1', '10.0.0.1', 'example.com', '']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('reads the one forwarding header it is told: Forwarded (for=, quoted, bracketed, with ports) or X-Forwarded-For', () => {
    const both = { forwarded: 'for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, for=198.51.100.17:80', 'x-forwarded-for': '203.0.113.1, 10.0.0.2' };
    expect(forwardedChain(both, 'forwarded')).toEqual(['192.0.2.43', '2001:db8:cafe::17', '198.51.100.17']);
    expect(forwardedChain(both, 'x-forwarded-for')).toEqual(['203.0.113.1', '10.0.0.2']);
    expect(forwardedChain({ 'x-forwarded-for': ['203.0.113.1', '10.0.0.2'] }, 'x-forwarded-for')).toEqual(['203.0.113.1', '10.0.0.2']);
    expect(forwardedChain({ forwarded: 'for=192.0.2.43' }, 'x-forwarded-for')).toEqual([]);
    expect(forwardedChain({ 'x-forwarded-for': '203.0.113.1' }, 'forwarded')).toEqual([]);
    expect(forwardedChain({}, 'forwarded')).toEqual([]);
  });

  it('believes forwarding headers only from trusted proxies, read from the right', () => {
    const trusted = addressSet(['10.0.0.0/8', '192.0.2.1', '::1']);
    const none = addressSet([]);
    const xff = (v: string) => ({ 'x-forwarded-for': v });
    const client = (peer: string, headers: Record<string, string>, set = trusted) => clientAddress(peer, headers, set, 'x-forwarded-for');
    expect(client('203.0.113.9', xff('198.51.100.1'))).toBe('203.0.113.9');
    expect(client('10.1.1.1', xff('198.51.100.1'), none)).toBe('10.1.1.1');
    expect(client('10.1.1.1', xff('6.6.6.6, 198.51.100.1'))).toBe('198.51.100.1');
    expect(client('::ffff:10.1.1.1', xff('198.51.100.1, 10.2.2.2, 192.0.2.1'))).toBe('198.51.100.1');
    expect(clientAddress('::1', { forwarded: 'for="[2001:db8::1]"' }, trusted, 'forwarded')).toBe('2001:db8::1');
    // All hops trusted: the leftmost; garbage where the client should be: the last trusted hop.
    expect(client('10.1.1.1', xff('10.3.3.3'))).toBe('10.3.3.3');
    expect(client('10.1.1.1', xff('not-an-ip'))).toBe('10.1.1.1');
    expect(client('10.1.1.1', {})).toBe('10.1.1.1');
  });

  it('never reads the forwarding header the proxy does not write: the client wrote it, and the proxy passed it on', () => {
    const trusted = addressSet(['127.0.0.0/8']);
    // nginx with $proxy_add_x_forwarded_for appends the client to X-Forwarded-For and passes a Forwarded header on.
    const spoofed = { forwarded: 'for=10.9.9.9', 'x-forwarded-for': '192.0.2.2' };
    expect(clientAddress('127.0.0.1', spoofed, trusted, 'x-forwarded-for')).toBe('192.0.2.2');
    expect(clientAddress('127.0.0.1', { forwarded: 'for=unknown', 'x-forwarded-for': '192.0.2.2' }, trusted, 'x-forwarded-for')).toBe('192.0.2.2');
    // A proxy that writes Forwarded, and passes on the X-Forwarded-For a client wrote.
    expect(clientAddress('127.0.0.1', { forwarded: 'for=192.0.2.2', 'x-forwarded-for': '10.9.9.9' }, trusted, 'forwarded')).toBe('192.0.2.2');
  });

  it('refuses entries that are not addresses or CIDR ranges', () => {
    for (const bad of ['example.com', '10.0.0.0/33', '10.0.0.0/', '::/129', '10.0.0.1/8/1', '']) expect(() => addressSet([bad]), bad).toThrow(/not an IP/);
  });

  it('answers an address set from its memo as from the list itself, across the memo being emptied when full', () => {
    const trusted = addressSet(['10.0.0.0/8', '2001:db8::/32']);
    // Twice the memo's size, twice over: every answer is remembered, then the memo fills and starts again.
    const addresses = Array.from({ length: ADDRESS_MEMO * 2 }, (_, i) =>
      i % 2 === 0 ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `11.0.${(i >> 8) & 255}.${i & 255}`,
    );
    for (let round = 0; round < 2; round++) for (const [i, a] of addresses.entries()) expect(trusted.matches(a), a).toBe(i % 2 === 0);
    // Raw forms are remembered under their own text, with the answer of their normalised address.
    expect(trusted.matches('::ffff:10.0.0.1')).toBe(true);
    expect(trusted.matches('::ffff:10.0.0.1')).toBe(true);
    expect(trusted.matches('2001:DB8::1')).toBe(true);
    expect(trusted.matches('not-an-ip')).toBe(false);
    expect(trusted.matches('x'.repeat(200))).toBe(false);
  });

  it('takes a request as local only when the peer and every forwarded address are loopback', () => {
    expect(isLoopbackRequest('127.0.0.1', {})).toBe(true);
    expect(isLoopbackRequest('::ffff:127.0.0.1', { 'x-forwarded-for': '127.0.0.1' })).toBe(true);
    expect(isLoopbackRequest('192.0.2.4', {})).toBe(false);
    expect(isLoopbackRequest(undefined, {})).toBe(false);
    expect(isLoopbackRequest('127.0.0.1', { 'x-forwarded-for': '127.0.0.1, 203.0.113.1' })).toBe(false);
    expect(isLoopbackRequest('127.0.0.1', { forwarded: 'for=unknown' })).toBe(false);
    // Both headers are looked at: a local proxy adds the client to one and passes the other on as the client wrote it.
    expect(isLoopbackRequest('127.0.0.1', { forwarded: 'for=127.0.0.1', 'x-forwarded-for': '192.0.2.2' })).toBe(false);
    expect(isLoopbackRequest('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', forwarded: 'for=192.0.2.2' })).toBe(false);
    expect(isLoopbackRequest('127.0.0.1', { 'x-forwarded-for': '127.0.0.1', forwarded: 'for=127.0.0.1;proto=https' })).toBe(true);
  });
});

describe('file-descriptor budget', () => {
  it('reads the soft limit from /proc/self/limits, and nothing from an unreadable or unlimited one', () => {
    const limits =
      'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            20000                20000                files     \n';
    expect(readFdLimit(() => limits)).toBe(20000);
    expect(readFdLimit(() => limits.replace('20000   ', 'unlimited'))).toBeUndefined();
    expect(
      readFdLimit(() => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
  });

  it('keeps 256 descriptors in reserve and gives WebSockets 80% of the rest', () => {
    expect(connectionBudget(20_000)).toEqual({ fdLimit: 20_000, maxConnections: 15_795, maxPendingConnections: 3_949 });
    expect(connectionBudget(1024)).toEqual({ fdLimit: 1024, maxConnections: 614, maxPendingConnections: 154 });
    expect(connectionBudget(100).maxConnections).toBeGreaterThan(0);
    expect(connectionBudget().fdLimit).toBe(readFdLimit() ?? FALLBACK_FD_LIMIT);
  });
});
