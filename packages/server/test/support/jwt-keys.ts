/**
 * Asymmetric JWT material for tests: RS256 and ES256 key pairs made by jose (public keys as SPKI PEM and as
 * JWK), tokens signed with them, and a JWKS served by a real local HTTP server on port 0 that counts its
 * requests. Closed after the test.
 */
import { createServer } from 'node:http';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, SignJWT, type CryptoKey, type JWK } from 'jose';
import { listenUntilCleanup } from './cleanup.js';

/** A signing key pair: the private key, the public key as SPKI PEM and as a JWK. */
export interface TestKey {
  alg: 'RS256' | 'ES256' | 'ES384';
  privateKey: CryptoKey;
  pem: string;
  jwk: JWK;
}

/** A fresh key pair for `alg` (private key extractable, so that it can be re-imported for another algorithm). */
export async function makeKey(alg: TestKey['alg']): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, pem: await exportSPKI(publicKey), jwk: await exportJWK(publicKey) };
}

/** The same RSA private key for another RSA algorithm (RS384, ...): same key material, other `alg`. */
export async function asAlgorithm(key: TestKey, alg: string): Promise<CryptoKey> {
  return importPKCS8(await exportPKCS8(key.privateKey), alg);
}

/** Signs `claims` with `key` (its own algorithm unless `alg` says otherwise); `exp` in seconds. */
export async function signWith(
  key: CryptoKey | Uint8Array,
  alg: string,
  claims: Record<string, unknown>,
  opts: { kid?: string; exp?: number; iat?: number } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader(opts.kid === undefined ? { alg } : { alg, kid: opts.kid });
  if (opts.exp !== undefined) jwt = jwt.setExpirationTime(opts.exp);
  if (opts.iat !== undefined) jwt = jwt.setIssuedAt(opts.iat);
  return jwt.sign(key);
}

/** A token with `alg: none` and no signature. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

/** How the test JWKS server answers: the set, an error status, a redirect, no answer, text that is not JSON, JSON that is no key set, or 2 MB. */
export type JwksMode = 'ok' | 'error' | 'redirect' | 'hang' | 'not-json' | 'bad-set' | 'huge';

/**
 * Serves `keys` as a JWKS at `url` and counts the requests; `mode` makes it fail in the ways an identity provider
 * can, and `keys` may be replaced (a rotation).
 */
export async function serveJwks(keys: JWK[]): Promise<{ url: string; requests: () => number; mode: (m: JwksMode) => void; setKeys: (k: JWK[]) => void }> {
  let n = 0;
  let mode: JwksMode = 'ok';
  let current = keys;
  const server = createServer((req, res) => {
    n += 1;
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    if (mode === 'hang') return;
    if (mode === 'error') res.writeHead(500).end('down');
    else if (mode === 'redirect') res.writeHead(302, { location: 'http://127.0.0.1:9/jwks.json' }).end();
    else if (mode === 'not-json') res.writeHead(200, { 'content-type': 'application/json' }).end('<html>maintenance</html>');
    else if (mode === 'bad-set') res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[null]}');
    else if (mode === 'huge') {
      // Chunked, no Content-Length: the reader must count what arrives.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"keys":[],"pad":"${'x'.repeat(1_000_000)}`);
      res.end(`${'x'.repeat(1_000_000)}"}`);
    } else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: current }));
  });
  const port = await listenUntilCleanup(server);
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    requests: () => n,
    mode: (m) => {
      mode = m;
    },
    setKeys: (k) => {
      current = k;
    },
  };
}
