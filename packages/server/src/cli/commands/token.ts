import { isValidChannel, userChannel } from '@herald/protocol';
import { SignJWT } from 'jose';
import { MIN_JWT_SECRET_LENGTH } from '../../gateway/options.js';
import { ConfigError } from '../config.js';
import { flagsHelp, parseFlags, required, type FlagSpec } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { flag: '--user', description: "The user id (the token's sub); the connection is subscribed to user:<id>." },
  { flag: '--channels', description: 'Private and presence channel patterns the token grants, comma-separated (e.g. "private:team-*").' },
  { flag: '--publish', description: 'Channel patterns the client may publish to, comma-separated (e.g. "chat:*"); none by default.' },
  { flag: '--info', description: 'JSON the other members of a presence channel see (e.g. \'{"name":"Ann"}\').' },
  { flag: '--ttl', description: 'Lifetime in seconds (default 3600).' },
  {
    flag: '--secret',
    env: 'HERALD_JWT_SECRET',
    description: 'The HS256 secret the gateway verifies tokens with (of a comma-separated rotation list, the first).',
  },
];

export const TOKEN_HELP = flagsHelp(
  'herald token --user ID [--channels P1,P2] [--publish P1,P2] [--info JSON] [--ttl SECONDS] [--secret S]',
  'Mints a connection token (JWT, HS256) for development and tests, and prints it. Backends mint their own\n(the PHP SDK: Herald\\Token::forUser).',
  SPECS,
);

/** `herald token`: the signed token. */
export async function tokenCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, now = Date.now()): Promise<string> {
  const v = parseFlags(argv, SPECS, env, 'token');
  const user = required(v, '--user', 'token');
  // Refused here as the gateway would refuse the token at connect time (close code 4501).
  if (!isValidChannel(userChannel(user))) throw new ConfigError('herald token: --user must be a user id of [A-Za-z0-9_-:.@=] (at most 195 characters)');
  // HERALD_JWT_SECRET may hold a rotation list: the gateway accepts each of them, so the first one signs.
  const secret =
    required(v, '--secret', 'token')
      .split(',')
      .map((s) => s.trim())
      .find((s) => s.length > 0) ?? '';
  if (secret.length < MIN_JWT_SECRET_LENGTH) {
    throw new ConfigError(`herald token: --secret must be at least ${MIN_JWT_SECRET_LENGTH} characters, as the gateway requires (HS256 needs 256 bits)`);
  }
  const ttlText = v.get('--ttl') ?? '3600';
  if (!/^\d+$/.test(ttlText) || Number(ttlText) < 1) throw new ConfigError('herald token: --ttl must be a positive number of seconds');
  const list = (flag: string): string[] =>
    (v.get(flag) ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c.length > 0);
  const claims: Record<string, unknown> = {};
  const channels = list('--channels');
  const publish = list('--publish');
  if (channels.length > 0) claims['channels'] = channels;
  if (publish.length > 0) claims['publish'] = publish;
  const info = v.get('--info');
  if (info !== undefined) {
    try {
      claims['info'] = JSON.parse(info) as unknown;
    } catch {
      throw new ConfigError('herald token: --info must be JSON, e.g. \'{"name":"Ann"}\'');
    }
  }
  const iat = Math.floor(now / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Number(ttlText))
    .sign(new TextEncoder().encode(secret));
}
