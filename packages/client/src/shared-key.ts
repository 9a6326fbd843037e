/**
 * A 53-bit string hash (cyrb53, public domain) in base 36. Not cryptographic: lock and channel names are
 * visible to every script of the origin, and this keeps user ids and URLs out of them while making a
 * collision between two users of one browser practically impossible.
 */
export function hash(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/**
 * Who a token authenticates: its `sub` claim when it is a JWT, else the whole token (two tokens that
 * cannot be read never share, which is the safe side).
 */
export function tokenUser(token: string): string {
  try {
    const claims: unknown = JSON.parse(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')));
    const sub = (claims as { sub?: unknown } | null)?.sub;
    if (typeof sub === 'string') return 'sub:' + sub;
  } catch {
    // Not a JWT.
  }
  return 'token:' + token;
}

/**
 * The name of the Web Lock and the BroadcastChannel of the tabs that share one connection: same origin
 * (both are per origin), same URL, same user (`user`: from {@link tokenUser}, an explicit `sharedKey`, or
 * empty for anonymous clients). The version keeps tabs running an incompatible build apart.
 */
export function sharedName(url: string, user: string): string {
  return 'herald/1/' + hash(url + '\n' + user);
}
