/**
 * Client addresses: normalising peer addresses, loopback checks, trusted proxies and the forwarding headers
 * (`X-Forwarded-For`, RFC 7239 `Forwarded`) they add. Pure functions over strings and headers.
 */
import { BlockList, isIP } from 'node:net';

/** Headers as Node and the transports hand them over. */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as `127.0.0.1`; any other address as it is, lower-cased. */
export function normalizeIp(ip: string): string {
  const lower = ip.trim().toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/** Whether an address is a loopback address (127.0.0.0/8 or ::1). */
export function isLoopbackIp(ip: string): boolean {
  const a = normalizeIp(ip);
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

/** Whether a listening host (a name or an address) is loopback only: `localhost`, 127.0.0.0/8, `::1`. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || isLoopbackIp(h);
}

/** One header's value as a string (repeated headers joined with commas, as RFC 9110 5.3 allows). */
function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** An address from a `Forwarded` `for=` value or an `X-Forwarded-For` entry: quotes, brackets and ports removed. */
function addressOf(raw: string): string {
  let v = raw.trim().replace(/^"|"$/g, '');
  if (v.startsWith('[')) v = v.slice(1, v.indexOf(']') < 0 ? undefined : v.indexOf(']'));
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(v)) v = v.slice(0, v.indexOf(':'));
  return normalizeIp(v);
}

/**
 * The forwarding header a trusted proxy writes: `x-forwarded-for` (nginx, HAProxy, most load balancers) or RFC 7239
 * `forwarded`. Only that one is read: a proxy passes the other through as the client wrote it.
 */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';
export const FORWARDED_HEADERS: readonly ForwardedHeader[] = ['x-forwarded-for', 'forwarded'];

/**
 * The hops a request went through, as one forwarding header lists them, client first: the `for=` of each element
 * of RFC 7239 `Forwarded`, or the entries of `X-Forwarded-For`. Entries that are not IP addresses (`unknown`,
 * obfuscated names) are kept as they are; callers decide what to do with them.
 */
export function forwardedChain(headers: HeaderBag, name: ForwardedHeader): string[] {
  const value = header(headers, name);
  if (value === undefined) return [];
  if (name === 'x-forwarded-for') {
    return value
      .split(',')
      .map(addressOf)
      .filter((a) => a !== '');
  }
  const out: string[] = [];
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') out.push(addressOf(pair.slice(eq + 1)));
    }
  }
  return out;
}

/** A set of addresses and CIDR ranges (IPv4 and IPv6); `matches` takes normalised or raw addresses. */
export interface AddressSet {
  matches(ip: string): boolean;
  readonly empty: boolean;
}

/** Parses `10.0.0.1`, `10.0.0.0/8`, `fd00::/8`...; throws an Error naming the entry that is neither. */
export function addressSet(entries: readonly string[]): AddressSet {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', bits, extra] = entry.trim().split('/');
    const ip = normalizeIp(addr);
    const family = isIP(ip);
    const prefix = bits === undefined ? undefined : Number(bits);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > max || bits === ''))) {
      throw new Error(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, prefix, type);
  }
  // BlockList.check makes a SocketAddress (a transferable object) per call, and one connection is checked about six
  // times (its socket, admission, the limits when it opens and closes): the answers are remembered per address.
  // Bounded: emptied once full (the set itself never changes, so a remembered answer is never stale).
  const seen = new Map<string, boolean>();
  return {
    empty: entries.length === 0,
    matches(raw) {
      const known = seen.get(raw);
      if (known !== undefined) return known;
      const ip = normalizeIp(raw);
      const family = isIP(ip);
      const hit = family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
      if (raw.length <= MAX_ADDRESS_TEXT) {
        if (seen.size >= ADDRESS_MEMO) seen.clear();
        seen.set(raw, hit);
      }
      return hit;
    },
  };
}

/** Addresses whose `AddressSet.matches` answer is remembered, at most. */
export const ADDRESS_MEMO = 4096;
/** Longest address text remembered (an IPv6 address with a zone or an IPv4 tail is well under it). */
const MAX_ADDRESS_TEXT = 64;

/**
 * The client's address: the TCP peer, unless the peer is a trusted proxy; then the forwarding header that proxy
 * writes (`name`) is read from the right (the hop the proxy itself added) and the first address that is not a
 * trusted proxy is the client. Entries left of it were written by the client and are never believed, and neither is
 * the other forwarding header (the proxy passes it through untouched). An entry that is not an address where the
 * client should be (a broken chain) leaves the last trusted hop as the client.
 */
export function clientAddress(peer: string, headers: HeaderBag, trusted: AddressSet, name: ForwardedHeader): string {
  let client = normalizeIp(peer);
  if (trusted.empty || !trusted.matches(client)) return client;
  const chain = forwardedChain(headers, name);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i] as string;
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!trusted.matches(hop)) return client;
  }
  return client;
}

/**
 * Whether an HTTP request comes from this machine: the TCP peer is loopback and so is every address that either
 * forwarding header names (a reverse proxy on this machine adds the remote client's address to one of them, and
 * passes the other through as the client wrote it). Used to keep the development API key away from other machines.
 */
export function isLoopbackRequest(peer: string | undefined, headers: HeaderBag): boolean {
  if (peer === undefined || !isLoopbackIp(peer)) return false;
  return FORWARDED_HEADERS.every((name) => forwardedChain(headers, name).every((hop) => isIP(hop) !== 0 && isLoopbackIp(hop)));
}
