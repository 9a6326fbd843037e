// CPU microseconds per JwtAuth.verifyConnection (the whole Auth seam call of a connect), for a build given as
// the first argument (default: this package's dist). Compare two builds in one run, e.g.:
//   node packages/server/scripts/verify-connection-cost.mjs /work/main/packages/server/dist
//   node packages/server/scripts/verify-connection-cost.mjs
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { importPKCS8, SignJWT } from 'jose';

const dist = process.argv[2] ?? new URL('../dist', import.meta.url).pathname;
const { JwtAuth } = await import(pathToFileURL(`${dist}/auth/jwt-auth.js`).href);
const secret = 'a-test-secret-of-some-length-0123456789';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pem = (k) => k.export({ type: 'spki', format: 'pem' }).toString();
const auth = new JwtAuth({ secrets: [secret], publicKeys: [pem(rsa.publicKey), pem(ec.publicKey)] });
const claims = { sub: 'user-42', channels: ['private-room-*'], exp: Math.floor(Date.now() / 1000) + 3600 };
const sign = (alg, key, i) => new SignJWT({ ...claims, jti: String(i) }).setProtectedHeader({ alg }).sign(key);

/** `warm` tokens first (never measured), then `n` verifications cycling through `tokens`. */
async function cost(name, warm, tokens, n) {
  const now = Date.now();
  for (const t of warm) if (!(await auth.verifyConnection(t, now)).ok) throw new Error(name);
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await auth.verifyConnection(tokens[i % tokens.length], now);
  const d = process.cpuUsage(t0);
  console.log(`${name.padEnd(34)} ${((d.user + d.system) / n).toFixed(1).padStart(7)} us`);
}
const hs = await Promise.all(Array.from({ length: 20000 }, (_, i) => sign('HS256', Buffer.from(secret), i)));
await cost('HS256, a new token each time', hs.slice(0, 1000), hs.slice(1000), 19000);
await cost('HS256, the same token', hs.slice(0, 1000), hs.slice(0, 1), 20000);
for (const [alg, k] of [
  ['RS256', rsa.privateKey],
  ['ES256', ec.privateKey],
]) {
  const key = await importPKCS8(k.export({ type: 'pkcs8', format: 'pem' }).toString(), alg);
  const toks = await Promise.all(Array.from({ length: 3000 }, (_, i) => sign(alg, key, i)));
  await cost(`${alg}, a new token each time`, toks.slice(0, 500), toks.slice(500), 2500);
  await cost(`${alg}, the same token`, toks.slice(0, 500), toks.slice(0, 1), 3000);
}
