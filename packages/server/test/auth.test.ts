/**
 * Connection tokens signed with asymmetric keys: RS256 and ES256 verified with PEM public keys
 * (`jwtPublicKeys`) or with the keys of a JWKS URL (`jwksUrl`), by JwtAuth alone and end to end through a
 * gateway; what must be refused (wrong key, expired, `alg: none`, algorithm confusion, unknown kid, other
 * algorithms); the JWKS fetched once; admin tokens only when enabled; and the options that are refused.
 */
import { createPublicKey } from 'node:crypto';
import { exportPKCS8 } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_CHANNEL, mintAdminToken } from '../src/auth/admin-token.js';
import { JwtAuth } from '../src/auth/jwt-auth.js';
import type { Verification } from '../src/auth/types.js';
import { OptionsError, resolveOptions } from '../src/gateway/options.js';
import { API_KEY, capturingLogger, eventually, JWT_SECRET, ManualClock, startGateway, TestClient } from './helpers.js';
import { asAlgorithm, makeKey, serveJwks, signWith, unsignedToken, type JwksMode, type TestKey } from './support/jwt-keys.js';

/** The time of the gateways' manual clock, and token expiries around it (seconds). */
const NOW = new ManualClock().now();
const LATER = Math.floor(NOW / 1000) + 3600;
const EARLIER = Math.floor(NOW / 1000) - 60;
const CLAIMS = { sub: '42', channels: ['private:team-*'] };

let rsa: TestKey;
let ec: TestKey;
let stranger: TestKey;
let p384: TestKey;

beforeAll(async () => {
  [rsa, ec, stranger, p384] = await Promise.all([makeKey('RS256'), makeKey('ES256'), makeKey('RS256'), makeKey('ES384')]);
});

const verify = (auth: JwtAuth, token: string): Promise<Verification> => auth.verifyConnection(token, NOW);
const refused = (v: Verification): string => (v.ok ? 'accepted' : v.reason);
/** The JWKS of the RSA key (without `alg`, as many identity providers publish it) and of the EC key. */
const jwks = () =>
  serveJwks([
    { ...rsa.jwk, kid: 'rsa-1', use: 'sig' },
    { ...ec.jwk, kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ]);

/** Connects with `token` and returns the user of `connected`, or the close code. */
async function outcome(ws: string, token: string): Promise<string | number | null> {
  const c = await TestClient.open(ws);
  c.send({ type: 'connect', token });
  const f = await c.next().catch(() => undefined);
  if (f?.type === 'connected') return f.user as string | null;
  return (await c.closed()).code;
}

describe('JwtAuth: PEM public keys', () => {
  it('accepts valid RS256 and ES256 tokens with the identity they carry', async () => {
    const auth = new JwtAuth({ publicKeys: [rsa.pem, ec.pem] });
    for (const key of [rsa, ec]) {
      const v = await verify(auth, await signWith(key.privateKey, key.alg, CLAIMS, { exp: LATER }));
      expect(v).toEqual({ ok: true, identity: { user: '42', channels: ['private:team-*'], gateway: [], expiresAt: LATER * 1000 } });
    }
  });

  it('refuses a wrong key, an expired token, alg none, an HS256 token keyed with the public key, and other algorithms', async () => {
    const auth = new JwtAuth({ publicKeys: [rsa.pem, ec.pem], secrets: [JWT_SECRET] });
    expect(refused(await verify(auth, await signWith(stranger.privateKey, 'RS256', CLAIMS, { exp: LATER })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(rsa.privateKey, 'RS256', CLAIMS, { exp: EARLIER })))).toBe('expired');
    expect(refused(await verify(auth, await signWith(ec.privateKey, 'ES256', CLAIMS, { exp: EARLIER })))).toBe('expired');
    expect(refused(await verify(auth, unsignedToken({ ...CLAIMS, exp: LATER })))).toBe('invalid');
    // Algorithm confusion: the public key's bytes (known to anybody) used as an HMAC secret.
    for (const pem of [rsa.pem, ec.pem]) {
      expect(refused(await verify(auth, await signWith(new TextEncoder().encode(pem), 'HS256', CLAIMS, { exp: LATER })))).toBe('invalid');
    }
    expect(refused(await verify(auth, await signWith(await asAlgorithm(rsa, 'RS384'), 'RS384', CLAIMS, { exp: LATER })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(await asAlgorithm(rsa, 'PS256'), 'PS256', CLAIMS, { exp: LATER })))).toBe('invalid');
    // The HS256 secret still works beside the public keys.
    expect((await verify(auth, await signWith(new TextEncoder().encode(JWT_SECRET), 'HS256', CLAIMS, { exp: LATER }))).ok).toBe(true);
  });

  it('uses a public key given as PKCS#1 or with text around the PEM block (what Node reads, the verifier can use)', async () => {
    const pkcs1 = createPublicKey(rsa.pem).export({ type: 'pkcs1', format: 'pem' }).toString();
    for (const pem of [pkcs1, `\n${ec.pem}\n`]) expect(() => resolveOptions({ jwtPublicKeys: [pem] })).not.toThrow();
    const auth = new JwtAuth({ publicKeys: [pkcs1, `\n${ec.pem}\n`] });
    for (const key of [rsa, ec]) expect((await verify(auth, await signWith(key.privateKey, key.alg, CLAIMS, { exp: LATER }))).ok).toBe(true);
  });

  it('accepts an admin token (kid herald-admin) only when admin tokens are enabled', async () => {
    const { token } = await mintAdminToken(API_KEY, NOW);
    const on = await verify(new JwtAuth({ apiKeys: [API_KEY], admin: true }), token);
    expect(on).toMatchObject({ ok: true, identity: { user: null, channels: [], gateway: [ADMIN_CHANNEL] } });
    for (const auth of [new JwtAuth({ apiKeys: [API_KEY], secrets: [JWT_SECRET] }), new JwtAuth({ apiKeys: [API_KEY], publicKeys: [rsa.pem] })]) {
      expect(refused(await verify(auth, token))).toBe('invalid');
    }
  });
});

describe('JwtAuth: a JWKS URL', () => {
  it('verifies RS256 and ES256 tokens with the keys of the set, fetching it once for many verifications', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ jwksUrl: server.url });
    const rs = await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER });
    const es = await signWith(ec.privateKey, 'ES256', { sub: '43' }, { kid: 'ec-1', exp: LATER });
    const first = await Promise.all([rs, es, rs, es].map((t) => verify(auth, t)));
    expect(first.map((v) => (v.ok ? v.identity.user : v.reason))).toEqual(['42', '43', '42', '43']);
    for (let i = 0; i < 5; i++) expect((await verify(auth, i % 2 ? rs : es)).ok).toBe(true);
    expect(first[0]).toEqual({ ok: true, identity: { user: '42', channels: ['private:team-*'], gateway: [], expiresAt: LATER * 1000 } });
    expect(server.requests()).toBe(1);
  });

  it('refuses an unknown kid, a key not in the set, an expired token, alg none, and RS384 with a key of the set', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ jwksUrl: server.url });
    expect(refused(await verify(auth, await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'nope', exp: LATER })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(stranger.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: EARLIER })))).toBe('expired');
    expect(refused(await verify(auth, unsignedToken({ ...CLAIMS, exp: LATER })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(await asAlgorithm(rsa, 'RS384'), 'RS384', CLAIMS, { kid: 'rsa-1', exp: LATER })))).toBe('invalid');
    // The set itself is fine: the right token passes.
    expect((await verify(auth, await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER }))).ok).toBe(true);
  });

  it('checks a token without kid against each key of the set it could be signed with (a rotation publishes two), a few at most', async () => {
    const next = await makeKey('RS256');
    // Two RSA keys without kid (the old and the new one of a rotation) and the EC key.
    const server = await serveJwks([
      { ...rsa.jwk, use: 'sig' },
      { ...next.jwk, use: 'sig' },
      { ...ec.jwk, alg: 'ES256' },
    ]);
    const auth = new JwtAuth({ jwksUrl: server.url });
    const v = await Promise.all([rsa, next].map(async (key) => verify(auth, await signWith(key.privateKey, 'RS256', { sub: '7' }, { exp: LATER }))));
    expect(v.map((r) => (r.ok ? r.identity.user : r.reason))).toEqual(['7', '7']);
    // A key that is not in the set, a key of the set with an expired token, and the claims of the matching key checked.
    const strangers = await verify(auth, await signWith(stranger.privateKey, 'RS256', CLAIMS, { exp: LATER }));
    expect(strangers).toMatchObject({ ok: false, reason: 'invalid', message: 'token rejected (ERR_JWS_SIGNATURE_VERIFICATION_FAILED)' });
    expect(refused(await verify(auth, await signWith(next.privateKey, 'RS256', CLAIMS, { exp: EARLIER })))).toBe('expired');
    expect(server.requests()).toBe(1);
    // A set with more candidates than are tried: a token of the last one is refused, and says why.
    const more = await Promise.all([1, 2, 3, 4].map(() => makeKey('RS256')));
    const many = await serveJwks([rsa, ...more].map((k) => k.jwk));
    const last = more[3] as TestKey;
    const big = new JwtAuth({ jwksUrl: many.url });
    expect((await verify(big, await signWith(rsa.privateKey, 'RS256', CLAIMS, { exp: LATER }))).ok).toBe(true);
    const tooMany = await verify(big, await signWith(last.privateKey, 'RS256', CLAIMS, { exp: LATER }));
    expect(tooMany).toMatchObject({ ok: false, reason: 'invalid', message: 'token rejected (ERR_JWKS_MULTIPLE_MATCHING_KEYS)' });
    // With its kid it passes.
    const named = await serveJwks([rsa, ...more].map((k, i) => ({ ...k.jwk, kid: `k${i}` })));
    expect((await verify(new JwtAuth({ jwksUrl: named.url }), await signWith(last.privateKey, 'RS256', CLAIMS, { kid: 'k4', exp: LATER }))).ok).toBe(true);
  });
});

describe('JwtAuth: a JWKS that fails, and the claims aud and iss', () => {
  const rs = (kid = 'rsa-1', key: TestKey = rsa) => signWith(key.privateKey, 'RS256', CLAIMS, { kid, exp: LATER });
  const message = (v: Verification): string => (v.ok ? 'accepted' : v.message);

  it('says a token could not be checked ("unavailable", not "invalid") in every way the JWKS fetch fails, and fetches again after a back-off, not per connect', async () => {
    const cases: Array<[JwksMode, string]> = [
      ['error', 'the JWKS answered HTTP 500'],
      ['redirect', 'the JWKS answered HTTP 302'],
      ['not-json', 'the JWKS is not JSON'],
      ['bad-set', 'the JWKS is not a key set'],
      ['huge', 'the JWKS is larger than 1048576 bytes'],
      ['hang', 'the JWKS did not answer within 300 ms'],
    ];
    for (const [mode, said] of cases) {
      const server = await jwks();
      server.mode(mode);
      // A short timeout only where no answer comes: the others must not race it on a busy machine.
      const auth = new JwtAuth({ jwksUrl: server.url, jwks: mode === 'hang' ? { timeout: 300 } : {} });
      const token = await rs();
      const v = await verify(auth, token);
      expect(refused(v), mode).toBe('unavailable');
      expect(message(v), mode).toContain(said);
      // A provider that is down is not asked again for every connect: not before 1 s, then 2 s, ...
      for (let i = 0; i < 10; i++) expect(refused(await auth.verifyConnection(token, NOW + 999)), mode).toBe('unavailable');
      expect(server.requests(), mode).toBe(1);
      server.mode('ok');
      expect((await auth.verifyConnection(token, NOW + 1000)).ok, mode).toBe(true);
      expect(server.requests(), mode).toBe(2);
    }
  });

  it('keeps verifying with the keys it has while the JWKS is down, and takes a rotated key once a fetch gets it', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ jwksUrl: server.url });
    expect((await verify(auth, await rs())).ok).toBe(true);
    server.mode('error');
    // Ten minutes on, the set is old: fetched again in the background, the old keys serving meanwhile (and after).
    const later = NOW + 600_000;
    expect((await auth.verifyConnection(await rs(), later)).ok).toBe(true);
    await eventually(() => (server.requests() === 2 ? true : undefined), 'the background fetch');
    expect((await auth.verifyConnection(await rs(), later + 100)).ok).toBe(true);
    // The provider rotates while it is down: a token of its new key cannot be judged yet, then is once it answers.
    const next = await makeKey('RS256');
    server.setKeys([{ ...next.jwk, kid: 'rsa-2' }]);
    expect(refused(await auth.verifyConnection(await rs('rsa-2', next), later + 2000))).toBe('unavailable');
    server.mode('ok');
    expect((await auth.verifyConnection(await rs('rsa-2', next), later + 31_000)).ok).toBe(true);
    // The retired key is gone with the fetch that got the new set.
    expect(refused(await auth.verifyConnection(await rs(), later + 31_001))).toBe('invalid');
  });

  it('checks again for a key published after the last fetch (a token issued since), whatever tokens of unknown keys others send', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ jwksUrl: server.url });
    expect((await verify(auth, await rs())).ok).toBe(true);
    // Someone sends a token of a key nobody has: refused (it was issued before the set was fetched, or has no iat).
    expect(refused(await auth.verifyConnection(await rs('made-up', stranger), NOW + 1000))).toBe('invalid');
    // The provider publishes a key and signs with it at once, within the 30 s between fetches: not refused for good.
    const next = await makeKey('RS256');
    server.setKeys([
      { ...rsa.jwk, kid: 'rsa-1' },
      { ...next.jwk, kid: 'rsa-2' },
    ]);
    const fresh = await signWith(next.privateKey, 'RS256', CLAIMS, { kid: 'rsa-2', exp: LATER, iat: Math.floor(NOW / 1000) + 5 });
    expect(refused(await auth.verifyConnection(fresh, NOW + 5000))).toBe('unavailable');
    expect(server.requests()).toBe(1);
    // Its retry, once the cooldown allows a fetch, connects.
    expect((await auth.verifyConnection(fresh, NOW + 30_000)).ok).toBe(true);
    expect(server.requests()).toBe(2);
  });

  it('stops trusting the keys it has once the JWKS could not be fetched for a day', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ jwksUrl: server.url });
    const token = await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: Math.floor(NOW / 1000) + 3 * 86_400 });
    expect((await verify(auth, token)).ok).toBe(true);
    server.mode('error');
    expect((await auth.verifyConnection(token, NOW + 86_399_000)).ok).toBe(true);
    expect(refused(await auth.verifyConnection(token, NOW + 86_400_000))).toBe('unavailable');
    server.mode('ok');
    expect((await auth.verifyConnection(token, NOW + 86_460_000)).ok).toBe(true);
  });

  it('answers a token whose nbf is up to a minute ahead of this clock "early" (valid in a moment: a clock skew), with any key, then accepts it', async () => {
    const server = await jwks();
    const auth = new JwtAuth({ secrets: [JWT_SECRET], publicKeys: [ec.pem], jwksUrl: server.url });
    const nbf = Math.floor(NOW / 1000) + 3;
    const tokens = [
      await signWith(new TextEncoder().encode(JWT_SECRET), 'HS256', { ...CLAIMS, nbf }, { exp: LATER }),
      await signWith(ec.privateKey, 'ES256', { ...CLAIMS, nbf }, { exp: LATER }),
      await signWith(rsa.privateKey, 'RS256', { ...CLAIMS, nbf }, { kid: 'rsa-1', exp: LATER }),
    ];
    for (const token of tokens) {
      const v = await auth.verifyConnection(token, Math.floor(NOW / 1000) * 1000);
      expect(refused(v)).toBe('early');
      expect(message(v)).toBe("token not valid yet (nbf 3 s ahead of this gateway's clock)");
      expect((await auth.verifyConnection(token, nbf * 1000)).ok).toBe(true);
    }
    // More than a minute ahead is no clock skew: a token minted for later, refused.
    const later = await signWith(new TextEncoder().encode(JWT_SECRET), 'HS256', { ...CLAIMS, nbf: Math.floor(NOW / 1000) + 61 }, { exp: LATER });
    expect(message(await auth.verifyConnection(later, Math.floor(NOW / 1000) * 1000))).toBe('token rejected (not valid yet: nbf is in the future)');
  });

  it('refuses a token whose aud or iss is not an accepted one, when they are set (any key type)', async () => {
    const auth = new JwtAuth({ secrets: [JWT_SECRET], publicKeys: [rsa.pem], audiences: ['herald', 'herald-eu'], issuers: ['https://idp.example/'] });
    const hs = (claims: Record<string, unknown>) => signWith(new TextEncoder().encode(JWT_SECRET), 'HS256', { ...CLAIMS, ...claims }, { exp: LATER });
    const iss = 'https://idp.example/';
    expect((await verify(auth, await hs({ aud: 'herald', iss }))).ok).toBe(true);
    expect((await verify(auth, await hs({ aud: ['billing', 'herald-eu'], iss }))).ok).toBe(true);
    expect(message(await verify(auth, await hs({ aud: 'billing', iss })))).toBe('token rejected (aud is not this gateway)');
    expect(refused(await verify(auth, await hs({ iss })))).toBe('invalid');
    expect(message(await verify(auth, await hs({ aud: 'herald', iss: 'https://evil.example/' })))).toBe('token rejected (iss is not an accepted issuer)');
    expect(refused(await verify(auth, await hs({ aud: 'herald' })))).toBe('invalid');
    expect(refused(await verify(auth, await signWith(rsa.privateKey, 'RS256', { ...CLAIMS, aud: 'other', iss }, { exp: LATER })))).toBe('invalid');
    // A token for another application that is not valid yet either: refused at once, not retried.
    const nbf = Math.floor(NOW / 1000) + 10;
    expect(message(await verify(auth, await hs({ aud: 'billing', iss, nbf })))).toBe('token rejected (aud is not this gateway)');
    // Not set: not checked.
    expect((await verify(new JwtAuth({ secrets: [JWT_SECRET] }), await hs({ aud: 'billing', iss: 'https://evil.example/' }))).ok).toBe(true);
  });
});

describe('gateway: asymmetric connection tokens end to end', () => {
  it('connects clients with RS256 and ES256 tokens (jwtPublicKeys); wrong key 4501, expired 4401', async () => {
    const gw = await startGateway({ jwtPublicKeys: [rsa.pem, ec.pem], allowAnonymous: false });
    expect(await outcome(gw.ws, await signWith(rsa.privateKey, 'RS256', CLAIMS, { exp: LATER }))).toBe('42');
    expect(await outcome(gw.ws, await signWith(ec.privateKey, 'ES256', { sub: '43' }, { exp: LATER }))).toBe('43');
    expect(await outcome(gw.ws, await signWith(stranger.privateKey, 'RS256', CLAIMS, { exp: LATER }))).toBe(4501);
    expect(await outcome(gw.ws, await signWith(rsa.privateKey, 'RS256', CLAIMS, { exp: EARLIER }))).toBe(4401);
    expect(await outcome(gw.ws, unsignedToken({ ...CLAIMS, exp: LATER }))).toBe(4501);
  });

  it('connects clients with tokens whose key comes from a JWKS URL (jwksUrl)', async () => {
    const server = await jwks();
    const gw = await startGateway({ jwksUrl: server.url, allowAnonymous: false });
    expect(await outcome(gw.ws, await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER }))).toBe('42');
    expect(await outcome(gw.ws, await signWith(ec.privateKey, 'ES256', { sub: '43' }, { kid: 'ec-1', exp: LATER }))).toBe('43');
    expect(await outcome(gw.ws, await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'nope', exp: LATER }))).toBe(4501);
    expect(await outcome(gw.ws, await signWith(stranger.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER }))).toBe(4501);
    expect(server.requests()).toBe(1);
  });

  it('closes a client with 1013 (try again), not 4501, while the JWKS cannot be fetched, counts it, and connects it once the JWKS answers', async () => {
    const server = await jwks();
    server.mode('error');
    const gw = await startGateway({ jwksUrl: server.url, allowAnonymous: false });
    const token = await signWith(rsa.privateKey, 'RS256', CLAIMS, { kid: 'rsa-1', exp: LATER });
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token });
    const closed = await c.closed();
    expect(closed.code).toBe(1013);
    expect(closed.reason).toContain('the JWKS answered HTTP 500');
    expect(gw.gateway.stats.authFailures.get('keys_unavailable')).toBe(1);
    server.mode('ok');
    gw.clock.advance(1000);
    expect(await outcome(gw.ws, token)).toBe('42');
  });

  it('closes a client whose token is not valid yet (nbf ahead of the clock) with 1013, so that it tries again, and counts it', async () => {
    const gw = await startGateway({ allowAnonymous: false });
    const nbf = Math.floor(gw.clock.now() / 1000) + 2;
    const token = await signWith(new TextEncoder().encode(JWT_SECRET), 'HS256', { ...CLAIMS, nbf }, { exp: LATER });
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token });
    const closed = await c.closed();
    expect([closed.code, closed.reason]).toEqual([1013, "token not valid yet (nbf 2 s ahead of this gateway's clock)"]);
    expect(gw.gateway.stats.authFailures.get('token_early')).toBe(1);
    gw.clock.advance(2000);
    expect(await outcome(gw.ws, token)).toBe('42');
  });

  it('warns at start of a plain http JWKS URL that is not on this machine', async () => {
    const { logger, entries } = capturingLogger();
    const said = () => entries.filter((e) => String(e['msg']).includes('the JWKS URL is plain http')).map((e) => e['jwksUrl']);
    await startGateway({ jwksUrl: 'http://idp.example/.well-known/jwks.json', logger });
    await startGateway({ jwksUrl: 'https://idp.example/.well-known/jwks.json', logger });
    await startGateway({ jwksUrl: 'http://127.0.0.1:9/jwks.json', logger });
    await startGateway({ jwksUrl: 'http://[::1]:9/jwks.json', logger });
    expect(said()).toEqual(['http://idp.example']);
  });
});

describe('options: public keys and JWKS URL', () => {
  const optionOf = (opts: Parameters<typeof resolveOptions>[0]): string | undefined => {
    try {
      resolveOptions(opts);
      return undefined;
    } catch (err) {
      if (!(err instanceof OptionsError)) throw err;
      return err.option;
    }
  };

  it('accepts RSA and EC P-256 public keys and an http(s) JWKS URL', () => {
    expect(optionOf({ jwtPublicKeys: [rsa.pem, ec.pem], jwksUrl: 'https://idp.example/.well-known/jwks.json' })).toBeUndefined();
    expect(optionOf({ jwksUrl: 'http://127.0.0.1:9/jwks' })).toBeUndefined();
  });

  it('refuses a key that is not a PEM public key, a private key, a P-384 key, and a JWKS URL that is not http(s)', async () => {
    const pkcs8 = await exportPKCS8(rsa.privateKey);
    for (const bad of ['not a key', rsa.jwk.n as string, pkcs8, p384.pem]) expect(optionOf({ jwtPublicKeys: [rsa.pem, bad] })).toBe('jwtPublicKeys');
    for (const url of ['file:///etc/jwks.json', 'ftp://idp.example/jwks', 'idp.example/jwks', '']) expect(optionOf({ jwksUrl: url })).toBe('jwksUrl');
  });
});
