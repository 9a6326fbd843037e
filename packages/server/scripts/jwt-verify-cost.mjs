// CPU microseconds per JWT verification: jose (WebCrypto, what JwtAuth used) against fast-jwt (node:crypto),
// with and without fast-jwt's verifier cache (the same token reconnecting). Run from the repository root:
//   node packages/server/scripts/jwt-verify-cost.mjs
// Measures process CPU time (user + system) per operation, not throughput: meaningful on a busy machine.
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { importSPKI, jwtVerify, SignJWT, importPKCS8 } from 'jose';

const N = Number(process.env.N ?? 20000);
const secret = 'a-test-secret-of-some-length-0123456789';
const claims = { sub: 'user-42', channels: ['private-room-*', 'presence-lobby'], exp: Math.floor(Date.now() / 1000) + 3600 };

async function cpuPerOp(fn, n = N) {
  for (let i = 0; i < Math.min(2000, n); i++) await fn(i); // warm up
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / n;
}

async function sign(alg, key, extra = {}) {
  return new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
}

const rows = [];
async function row(name, fn, n) {
  const us = await cpuPerOp(fn, n);
  rows.push([name, us]);
  console.log(`${name.padEnd(60)} ${us.toFixed(1).padStart(7)} us`);
}

// HS256 -------------------------------------------------------------------------------------------
const hmacKey = await webcrypto.subtle.importKey('raw', Buffer.from(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
// Distinct tokens (a cold verify each time) and one token again and again (a reconnect).
const distinct = await Promise.all(Array.from({ length: 1000 }, (_, i) => sign('HS256', Buffer.from(secret), { jti: String(i) })));
const same = distinct[0];
await row('HS256 jose jwtVerify (CryptoKey), distinct tokens', (i) =>
  jwtVerify(distinct[i % 1000], hmacKey, { algorithms: ['HS256'], currentDate: new Date() }),
);
const fastHs = createVerifier({ key: secret, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true, cache: false });
await row('HS256 fast-jwt, no cache, distinct tokens', (i) => fastHs(distinct[i % 1000]));
// A cache smaller than the 1000 tokens in rotation: every verify misses (the cost of the cache on new tokens).
const fastHsCache = createVerifier({ key: secret, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true, cache: 100 });
await row('HS256 fast-jwt, cache, every verify a miss', (i) => fastHsCache(distinct[i % 1000]));
await row('HS256 jose, same token', () => jwtVerify(same, hmacKey, { algorithms: ['HS256'], currentDate: new Date() }));
const fastHsCache2 = createVerifier({ key: secret, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true, cache: 10_000 });
await row('HS256 fast-jwt, cache hit (same token)', () => fastHsCache2(same));

// RS256 / ES256 -----------------------------------------------------------------------------------
for (const [alg, gen] of [
  ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' })],
]) {
  const { publicKey, privateKey } = gen();
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const priv = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), alg);
  const toks = await Promise.all(Array.from({ length: 200 }, (_, i) => sign(alg, priv, { jti: String(i) })));
  const joseKey = await importSPKI(pub, alg);
  const n = alg === 'RS256' ? 5000 : 3000;
  await row(`${alg} jose jwtVerify (CryptoKey), distinct tokens`, (i) => jwtVerify(toks[i % 200], joseKey, { algorithms: [alg], currentDate: new Date() }), n);
  const v = createVerifier({ key: pub, algorithms: [alg], ignoreExpiration: true, ignoreNotBefore: true, cache: false });
  await row(`${alg} fast-jwt, no cache, distinct tokens`, (i) => v(toks[i % 200]), n);
  const vc = createVerifier({ key: pub, algorithms: [alg], ignoreExpiration: true, ignoreNotBefore: true, cache: 10_000 });
  await row(`${alg} fast-jwt, cache hit (same token)`, () => vc(toks[0]), n);
}
