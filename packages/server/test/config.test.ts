/**
 * Unit tests of the configuration schema (`parseConfig`, `SETTINGS`, `helpText`) and of `resolveOptions`.
 * The CLI's own rules (development mode, production refusals) live in `prepareOptions` in cli/main.ts, which
 * runs `main` on import; they are tested through a real child process in cli.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, NODE_DEFAULTS, parseConfig, SETTINGS, withPusherApp, type Setting } from '../src/cli/config.js';
import { LOG_LEVELS } from '../src/util/logger.js';
import { DEFAULTS, OptionsError, resolveOptions, webhookEndpoints, type GatewayOptions, type ResolvedOptions } from '../src/gateway/options.js';
import { pusherWebhookPlugin } from '../src/protocols/pusher/protocol.js';

const setting = (key: Setting['key']): Setting => {
  const s = SETTINGS.find((x) => x.key === key);
  if (!s) throw new Error(`no setting ${key}`);
  return s;
};

/** Runs `fn` and returns the `type` error it throws (fails the test when it throws nothing or something else). */
function thrown<E extends Error>(type: new (...args: any[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`expected a ${type.name}, nothing was thrown`);
}
const configError = (fn: () => unknown): ConfigError => thrown(ConfigError, fn);
const optionsError = (fn: () => unknown): OptionsError => thrown(OptionsError, fn);

/** A valid raw text per setting type, and the value it parses to. */
function sample(s: Setting): { raw: string; value: unknown } {
  switch (s.type) {
    case 'files':
      // Read through the injected reader, as the configuration file is (the tests below answer '{}').
      return { raw: 'first.pem,second.pem', value: ['{}', '{}'] };
    case 'int':
      return { raw: '1234', value: 1234 };
    case 'bool':
      return { raw: 'true', value: true };
    case 'list':
      return {
        raw: 'first_value_0123456789abcdef_0123,second_value_0123456789abcdef_01',
        value: ['first_value_0123456789abcdef_0123', 'second_value_0123456789abcdef_01'],
      };
    case 'enum':
      return { raw: s.values?.[1] ?? '', value: s.values?.[1] };
    case 'string':
      return { raw: 'some-value', value: 'some-value' };
    case 'json':
      return { raw: '[{"id":"a","key":"k","secret":"s"}]', value: [{ id: 'a', key: 'k', secret: 's' }] };
  }
}

const isNodeSetting = (s: Setting): boolean => s.key in NODE_DEFAULTS;
const valueOf = (c: ReturnType<typeof parseConfig>, s: Setting): unknown =>
  isNodeSetting(s) ? (c.node as unknown as Record<string, unknown>)[s.key] : (c.options as Record<string, unknown>)[s.key];

describe('SETTINGS schema', () => {
  it('has one unique env variable and one unique flag per setting, all named consistently', () => {
    const envs = SETTINGS.map((s) => s.env);
    const flags = SETTINGS.map((s) => s.flag);
    const keys = SETTINGS.map((s) => s.key);
    expect(new Set(envs).size).toBe(SETTINGS.length);
    expect(new Set(flags).size).toBe(SETTINGS.length);
    expect(new Set(keys).size).toBe(SETTINGS.length);
    for (const s of SETTINGS) {
      expect(s.env).toMatch(/^HERALD_[A-Z0-9_]+$/);
      expect(s.flag).toMatch(/^--[a-z0-9-]+$/);
      expect(s.description.length).toBeGreaterThan(0);
    }
  });

  it('maps every setting onto a gateway option or a process setting with a default, and covers every option', () => {
    const optionKeys = SETTINGS.filter((s) => !isNodeSetting(s)).map((s) => s.key);
    expect(
      SETTINGS.filter(isNodeSetting)
        .map((s) => s.key)
        .sort(),
    ).toEqual(Object.keys(NODE_DEFAULTS).sort());
    for (const k of optionKeys) expect(Object.keys(DEFAULTS)).toContain(k);
    // demoApiKey and demoTokenSecret are not settings: the CLI passes its generated development secrets to the demo page.
    expect([...optionKeys].sort()).toEqual(
      Object.keys(DEFAULTS)
        .filter((k) => k !== 'demoApiKey' && k !== 'demoTokenSecret')
        .sort(),
    );
    expect(setting('logLevel').values).toEqual(LOG_LEVELS);
  });

  it('marks the API key and the JWT secret as secret', () => {
    expect(setting('apiKeys').secret).toBe(true);
    expect(setting('jwtSecrets').secret).toBe(true);
  });

  it('lists every flag and env variable in the help text', () => {
    const text = helpText();
    for (const s of SETTINGS) {
      expect(text).toContain(s.flag);
      expect(text).toContain(s.env);
    }
  });

  it('lists the values of every setting that takes one of a few (--log-format, --transport)', () => {
    const text = helpText();
    const enums = SETTINGS.filter((s) => s.values !== undefined);
    expect(enums.map((s) => s.flag)).toEqual(expect.arrayContaining(['--log-format', '--log-level', '--transport']));
    for (const s of enums) {
      const line = text.split('\n').find((l) => l.trimStart().startsWith(`${s.flag} `));
      expect(line, s.flag).toContain(`One of ${(s.values ?? []).join(', ')}.`);
    }
  });
});

describe('parseConfig', () => {
  it('returns no options, log level info and nothing explicit for an empty environment and no flags', () => {
    const c = parseConfig([], {});
    expect(c.options).toEqual({});
    expect(c.logLevel).toBe('info');
    expect([...c.explicit]).toEqual([]);
  });

  it.each(SETTINGS.map((s) => [s.env, s] as const))('reads %s from the environment', (_env, s) => {
    const { raw, value } = sample(s);
    const c = parseConfig([], { [s.env]: raw }, () => '{}');
    expect(valueOf(c, s)).toEqual(value);
    expect(c.explicit.has(s.key)).toBe(true);
    expect(c.explicit.size).toBe(1);
  });

  it.each(SETTINGS.map((s) => [s.flag, s] as const))('reads %s as a flag, in both the "--flag value" and "--flag=value" forms', (_flag, s) => {
    const { raw, value } = sample(s);
    const spaced = parseConfig([s.flag, raw], {}, () => '{}');
    const joined = parseConfig([`${s.flag}=${raw}`], {}, () => '{}');
    expect(valueOf(spaced, s)).toEqual(value);
    expect(valueOf(joined, s)).toEqual(value);
    expect(spaced.explicit.has(s.key)).toBe(true);
    expect(joined.explicit.has(s.key)).toBe(true);
  });

  describe('configuration file', () => {
    const file = (content: object | string) => () => (typeof content === 'string' ? content : JSON.stringify(content));

    it('reads settings from a JSON file, overridden by environment variables, overridden by flags', () => {
      const read = file({
        port: 7000,
        host: '0.0.0.0',
        apiKeys: ['from_file_0123456789'],
        allowAnonymous: true,
        redisUrl: 'redis://10.0.0.5:6379',
        logLevel: 'warn',
      });
      const c = parseConfig(['--config', 'herald.json', '--port', '9000'], { HERALD_HOST: '127.0.0.2' }, read);
      expect(c.options).toMatchObject({ port: 9000, host: '127.0.0.2', apiKeys: ['from_file_0123456789'], allowAnonymous: true });
      expect(c.node).toMatchObject({ redisUrl: 'redis://10.0.0.5:6379', logLevel: 'warn', config: 'herald.json' });
      expect(c.explicit.has('apiKeys')).toBe(true);
    });

    it('finds the file through HERALD_CONFIG too, and accepts strings as the environment would', () => {
      const c = parseConfig([], { HERALD_CONFIG: 'x.json' }, file({ port: '7001', apiKeys: 'a_key_0123456789abcdef,b_key_0123456789abcdef' }));
      expect(c.options).toMatchObject({ port: 7001, apiKeys: ['a_key_0123456789abcdef', 'b_key_0123456789abcdef'] });
    });

    it.each<[string, string | object, string]>([
      ['unknown key', { prot: 1 }, 'prot'],
      ['wrong type', { port: true }, 'port'],
      ['negative integer', { port: -1 }, 'port'],
      ['list of numbers', { apiKeys: [1, 2] }, 'apiKeys'],
      ['bad enum', { logLevel: 'loud' }, 'logLevel'],
      ['not an object', [], 'x.json'],
      ['not JSON', '{port:', 'x.json'],
      ['config inside the file', { config: 'other.json' }, 'config'],
    ])('rejects %s, naming it', (_name, content, named) => {
      expect(configError(() => parseConfig(['--config', 'x.json'], {}, file(content))).message).toContain(named);
    });

    it('names a file it cannot read', () => {
      const err = configError(() =>
        parseConfig(['--config', '/nonexistent/herald.json'], {}, () => {
          throw new Error('ENOENT');
        }),
      );
      expect(err.message).toContain('/nonexistent/herald.json');
    });
  });

  it('keeps the log level out of the gateway options', () => {
    const c = parseConfig(['--log-level', 'debug'], { HERALD_LOG_LEVEL: 'warn' });
    expect(c.logLevel).toBe('debug');
    expect(c.options).toEqual({});
    expect(c.explicit.has('logLevel')).toBe(true);
  });

  it('lets flags win over environment variables', () => {
    const c = parseConfig(['--port', '9001', '--host=0.0.0.0', '--allow-anonymous', 'false', '--api-key', 'flag_key_0123456789'], {
      HERALD_PORT: '9000',
      HERALD_HOST: '127.0.0.1',
      HERALD_ALLOW_ANONYMOUS: 'true',
      HERALD_API_KEY: 'env_key_0123456789',
      HERALD_HISTORY_SIZE: '7',
    });
    expect(c.options).toEqual({ port: 9001, host: '0.0.0.0', allowAnonymous: false, apiKeys: ['flag_key_0123456789'], historySize: 7 });
  });

  it('lets a later flag win over an earlier one', () => {
    expect(parseConfig(['--port', '1', '--port=2'], {}).options.port).toBe(2);
  });

  it('splits only at the first "=" of --flag=value', () => {
    expect(parseConfig(['--api-key=abc=def=0123456789'], {}).options.apiKeys).toEqual(['abc=def=0123456789']);
    expect(parseConfig(['--host=='], {}).options.host).toBe('=');
  });

  it('takes a bool flag without a value as true: at the end, before another flag, or before nothing', () => {
    expect(parseConfig(['--allow-anonymous'], {}).options.allowAnonymous).toBe(true);
    const c = parseConfig(['--allow-anonymous', '--port', '5'], { HERALD_ALLOW_ANONYMOUS: 'false' });
    expect(c.options).toEqual({ allowAnonymous: true, port: 5 });
  });

  it('takes an explicit value after a bool flag, in both forms', () => {
    expect(parseConfig(['--allow-anonymous', 'false'], {}).options.allowAnonymous).toBe(false);
    expect(parseConfig(['--allow-anonymous=off'], {}).options.allowAnonymous).toBe(false);
    expect(parseConfig(['--allow-anonymous', 'yes', '--port', '3'], {}).options).toEqual({ allowAnonymous: true, port: 3 });
  });

  it.each([
    ['1', true],
    ['true', true],
    ['TRUE', true],
    [' yes ', true],
    ['on', true],
    ['0', false],
    ['false', false],
    ['No', false],
    ['off', false],
  ])('parses the bool %j as %s', (raw, value) => {
    expect(parseConfig([], { HERALD_ALLOW_ANONYMOUS: raw }).options.allowAnonymous).toBe(value);
  });

  it('splits lists at commas, trims items and drops empty ones', () => {
    const c = parseConfig(['--ws-path', ' /a , ,/b,'], { HERALD_ALLOWED_ORIGINS: 'https://a.example,  https://b.example ,' });
    expect(c.options.wsPaths).toEqual(['/a', '/b']);
    expect(c.options.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(parseConfig([], { HERALD_ALLOWED_ORIGINS: '' }).options.allowedOrigins).toEqual([]);
  });

  it('parses integers, trimming surrounding blanks', () => {
    expect(parseConfig([], { HERALD_PORT: ' 8081 ' }).options.port).toBe(8081);
    expect(parseConfig(['--max-frame-bytes', '0'], {}).options.maxFrameSize).toBe(0);
  });

  it.each(['abc', '', ' ', '-1', '1.5', '1e3', '0x10', '12abc', '+5', 'NaN', 'Infinity'])('rejects the integer %j, naming the setting', (raw) => {
    expect(configError(() => parseConfig([], { HERALD_PORT: raw })).message).toContain('HERALD_PORT');
    expect(configError(() => parseConfig([`--port=${raw}`], {})).message).toContain('--port');
  });

  it.each(['maybe', '', '2', 'truee'])('rejects the bool %j, naming the setting', (raw) => {
    expect(configError(() => parseConfig([], { HERALD_ALLOW_ANONYMOUS: raw })).message).toContain('HERALD_ALLOW_ANONYMOUS');
    expect(configError(() => parseConfig([`--allow-anonymous=${raw}`], {})).message).toContain('--allow-anonymous');
  });

  it('rejects a log level outside the list, naming the setting', () => {
    expect(configError(() => parseConfig(['--log-level', 'loud'], {})).message).toContain('--log-level');
    expect(configError(() => parseConfig([], { HERALD_LOG_LEVEL: 'INFO' })).message).toContain('HERALD_LOG_LEVEL');
  });

  it('rejects a flag that needs a value when none follows', () => {
    expect(configError(() => parseConfig(['--port'], {})).message).toContain('--port');
    expect(configError(() => parseConfig(['--allow-anonymous', '--api-key'], {})).message).toContain('--api-key');
  });

  it('rejects unknown flags and positional arguments, naming them', () => {
    expect(configError(() => parseConfig(['--prot', '1'], {})).message).toContain('--prot');
    expect(configError(() => parseConfig(['--prot=1'], {})).message).toContain('--prot');
    expect(configError(() => parseConfig(['-p', '1'], {})).message).toContain('-p');
    expect(configError(() => parseConfig(['extra'], {})).message).toContain('extra');
    // Flag names are exact: no case folding, no prefixes.
    expect(configError(() => parseConfig(['--PORT', '1'], {})).message).toContain('--PORT');
    expect(configError(() => parseConfig(['--po', '1'], {})).message).toContain('--po');
  });

  it('warns about unknown HERALD_* variables, naming the settings they are close to, and ignores every other variable', () => {
    const typo = parseConfig([], { HERALD_PROT: '1' });
    expect(typo.options).toEqual({});
    expect(typo.notices).toEqual([expect.objectContaining({ level: 'warn', fields: { variable: 'HERALD_PROT', nearMisses: ['HERALD_PORT'] } })]);
    const plural = parseConfig([], { HERALD_PORT: '1', HERALD_API_KEYS: 'x' });
    expect(plural.options).toEqual({ port: 1 });
    expect(plural.notices[0]?.fields).toEqual({ variable: 'HERALD_API_KEYS', nearMisses: ['HERALD_API_KEY'] });
    const far = parseConfig([], { HERALD_SOMETHING_ELSE_ENTIRELY: 'x' });
    expect(far.notices[0]).toMatchObject({ level: 'warn', fields: { variable: 'HERALD_SOMETHING_ELSE_ENTIRELY', nearMisses: [] } });
    const c = parseConfig([], { PORT: 'abc', HOME: '/root', herald_port: 'abc', HERALD_PORT: undefined, NODE_ENV: 'production' });
    expect(c.options).toEqual({});
    expect(c.notices).toEqual([]);
  });

  it('recognises and ignores the variables Kubernetes injects for a Service named herald, HERALD_PORT=tcp://... included', () => {
    const env = {
      HERALD_PORT: 'tcp://10.0.0.1:8080',
      HERALD_SERVICE_HOST: '10.0.0.1',
      HERALD_SERVICE_PORT: '8080',
      HERALD_SERVICE_PORT_HTTP: '8080',
      HERALD_PORT_8080_TCP: 'tcp://10.0.0.1:8080',
      HERALD_PORT_8080_TCP_PROTO: 'tcp',
      HERALD_PORT_8080_TCP_PORT: '8080',
      HERALD_PORT_8080_TCP_ADDR: '10.0.0.1',
    };
    const c = parseConfig([], env);
    expect(c.options).toEqual({});
    expect(c.notices).toEqual([expect.objectContaining({ level: 'info', fields: { variables: Object.keys(env).sort() } })]);
    // Only the service-link form of HERALD_PORT is taken for Kubernetes: any other invalid value still fails hard.
    for (const raw of ['abc', 'tcp://10.0.0.1', '8080x']) expect(configError(() => parseConfig([], { HERALD_PORT: raw })).message).toContain('HERALD_PORT');
  });

  it('ignores HERALD_URL (used by SDKs and examples, not by the server)', () => {
    expect(parseConfig([], { HERALD_URL: 'http://localhost:8080' }).options).toEqual({});
  });

  it('reports only the settings actually given as explicit', () => {
    const c = parseConfig(['--allow-anonymous'], { HERALD_PORT: '1' });
    expect([...c.explicit].sort()).toEqual(['allowAnonymous', 'port']);
  });
});

describe('resolveOptions', () => {
  it('returns the defaults for no options, as a copy', () => {
    const o = resolveOptions({});
    expect(o).toEqual(DEFAULTS);
    expect(o).not.toBe(DEFAULTS);
    (o as { port: number }).port = 1;
    expect(DEFAULTS.port).toBe(8080);
  });

  it('merges given values over the defaults and ignores undefined ones', () => {
    const o = resolveOptions({
      port: 0,
      host: '0.0.0.0',
      pingInterval: 1000,
      idleTimeout: 3000,
      apiKeys: ['k'.repeat(16)],
      historySize: 0,
      port2: 1,
    } as GatewayOptions);
    expect(o).toEqual({ ...DEFAULTS, port: 0, host: '0.0.0.0', pingInterval: 1000, idleTimeout: 3000, apiKeys: ['k'.repeat(16)], historySize: 0 });
    expect(resolveOptions({ port: undefined, clientRate: undefined } as unknown as GatewayOptions)).toEqual(DEFAULTS);
  });

  it('leaves the collaborators (engine, clock, logger) out of the resolved options', () => {
    const o = resolveOptions({ clock: { now: () => 0 } } as unknown as GatewayOptions);
    expect(Object.keys(o).sort()).toEqual(Object.keys(DEFAULTS).sort());
  });

  const positive: Array<keyof ResolvedOptions> = [
    'connectTimeout',
    'pingInterval',
    'idleTimeout',
    'sweepInterval',
    'maxFrameSize',
    'maxSubscriptions',
    'clientRate',
    'clientBurst',
    'maxInvalidFrames',
    'sendBufferLimit',
    'maxBodySize',
    'maxPublishChannels',
    'shutdownTimeout',
    'historyTtl',
    'idempotencyTtl',
  ];
  const bad: unknown[] = [0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '5', null, true];
  it.each(positive)('rejects a %s that is not a positive finite number, naming it', (key) => {
    for (const v of bad) {
      // idleTimeout must also exceed pingInterval: keep that rule out of the way.
      const base: GatewayOptions = key === 'pingInterval' ? { idleTimeout: 2_000_000_000 } : {};
      const err = optionsError(() => resolveOptions({ ...base, [key]: v } as GatewayOptions));
      expect(err.option, `value ${String(v)}`).toBe(key);
    }
  });

  it.each(positive)('accepts a positive %s', (key) => {
    const base: GatewayOptions = key === 'pingInterval' ? { idleTimeout: 2_000_000_000 } : key === 'idleTimeout' ? { pingInterval: 1 } : {};
    expect(resolveOptions({ ...base, [key]: 7 } as GatewayOptions)[key]).toBe(7);
  });

  const MAX_TIMER_MS = 2 ** 31 - 1;
  const durations: Array<keyof ResolvedOptions> = [
    'connectTimeout',
    'pingInterval',
    'idleTimeout',
    'sweepInterval',
    'shutdownTimeout',
    'historyTtl',
    'idempotencyTtl',
  ];
  it.each(durations)('rejects a %s beyond the range of Node timers (2^31-1 ms), naming it, and accepts the limit', (key) => {
    // Above 2^31-1 ms, setTimeout/setInterval fire after 1 ms instead: such a value must not be accepted.
    const over: GatewayOptions = key === 'pingInterval' ? { pingInterval: 2 ** 31, idleTimeout: MAX_TIMER_MS } : { [key]: 2 ** 31 };
    expect(optionsError(() => resolveOptions(over)).option).toBe(key);
    expect(optionsError(() => resolveOptions({ ...over, [key]: 1e15 })).option).toBe(key);
    const limit: GatewayOptions = key === 'pingInterval' ? { pingInterval: MAX_TIMER_MS - 1, idleTimeout: MAX_TIMER_MS } : { [key]: MAX_TIMER_MS };
    expect(resolveOptions(limit)[key]).toBe(key === 'pingInterval' ? MAX_TIMER_MS - 1 : MAX_TIMER_MS);
  });

  it('accepts ports 0-65535 and rejects anything else, naming port', () => {
    expect(resolveOptions({ port: 0 }).port).toBe(0);
    expect(resolveOptions({ port: 65535 }).port).toBe(65535);
    for (const port of [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e20]) {
      expect(optionsError(() => resolveOptions({ port })).option).toBe('port');
    }
  });

  it('accepts a history size of 0 (history off) and rejects negative or fractional sizes', () => {
    expect(resolveOptions({ historySize: 0 }).historySize).toBe(0);
    for (const historySize of [-1, 0.5, Number.NaN]) expect(optionsError(() => resolveOptions({ historySize })).option).toBe('historySize');
  });

  it('requires the idle timeout to exceed the ping interval', () => {
    expect(optionsError(() => resolveOptions({ pingInterval: 1000, idleTimeout: 1000 })).option).toBe('idleTimeout');
    expect(optionsError(() => resolveOptions({ pingInterval: 1000, idleTimeout: 999 })).option).toBe('idleTimeout');
    // With the default idle timeout (60 s), a ping interval of 60 s or more is refused too.
    expect(optionsError(() => resolveOptions({ pingInterval: DEFAULTS.idleTimeout })).option).toBe('idleTimeout');
    expect(resolveOptions({ pingInterval: 1000, idleTimeout: 1001 }).idleTimeout).toBe(1001);
  });

  it.each([[[]], [['ws']], [['/ws', 'x']], [['/healthz']], [['/readyz']], [['/api/ws']], [['/ws', '/api/publish']]])('rejects wsPaths %j', (wsPaths) => {
    expect(optionsError(() => resolveOptions({ wsPaths })).option).toBe('wsPaths');
  });

  it('accepts several WebSocket paths', () => {
    expect(resolveOptions({ wsPaths: ['/ws', '/socket', '/apiws'] }).wsPaths).toEqual(['/ws', '/socket', '/apiws']);
  });

  it('requires API keys of at least 16 characters, each of them', () => {
    expect(resolveOptions({ apiKeys: ['k'.repeat(16)] }).apiKeys).toEqual(['k'.repeat(16)]);
    expect(optionsError(() => resolveOptions({ apiKeys: ['k'.repeat(15)] })).option).toBe('apiKeys');
    expect(optionsError(() => resolveOptions({ apiKeys: ['k'.repeat(40), 'short'] })).option).toBe('apiKeys');
    expect(optionsError(() => resolveOptions({ apiKeys: [''] })).option).toBe('apiKeys');
  });

  it('requires JWT secrets of at least 32 characters, each of them', () => {
    expect(resolveOptions({ jwtSecrets: ['s'.repeat(32)] }).jwtSecrets).toEqual(['s'.repeat(32)]);
    expect(optionsError(() => resolveOptions({ jwtSecrets: ['s'.repeat(31)] })).option).toBe('jwtSecrets');
    expect(optionsError(() => resolveOptions({ jwtSecrets: ['s'.repeat(64), 's'.repeat(10)] })).option).toBe('jwtSecrets');
  });

  it('makes OptionsError an Error that carries the option name', () => {
    const err = optionsError(() => resolveOptions({ clientRate: 0 }));
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('OptionsError');
    expect(err.option).toBe('clientRate');
    expect(err.message).toContain('clientRate');
  });

  it('accepts what parseConfig produces from every setting documented with its default', () => {
    // Round trip: each default, written as text and parsed by the CLI schema, resolves to itself.
    const env: Record<string, string> = {};
    for (const s of SETTINGS) {
      if (isNodeSetting(s) || s.key === 'apiKeys' || s.key === 'jwtSecrets') continue;
      const v = DEFAULTS[s.key as keyof ResolvedOptions];
      if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
      env[s.env] = Array.isArray(v) ? v.join(',') : String(v);
    }
    expect(resolveOptions(parseConfig([], env).options)).toEqual(DEFAULTS);
  });
});

describe('Pusher apps', () => {
  const app = { id: 'app1', key: 'key-1', secret: 'secret-0123456789ab' };

  it('adds the app of HERALD_PUSHER_APP_ID/KEY/SECRET to the apps of the file, replacing one with its id', () => {
    const read = () =>
      JSON.stringify({
        pusherApps: [
          { ...app, secret: 'old-secret-0123456789' },
          { id: 'app2', key: 'key-2', secret: 'secret-2-0123456789', clientEvents: false },
        ],
      });
    const c = parseConfig(['--config', 'h.json'], { HERALD_PUSHER_APP_ID: app.id, HERALD_PUSHER_APP_KEY: app.key, HERALD_PUSHER_APP_SECRET: app.secret }, read);
    const options = withPusherApp(c.options, c.node);
    expect(options.pusherApps).toEqual([{ id: 'app2', key: 'key-2', secret: 'secret-2-0123456789', clientEvents: false }, app]);
    expect(resolveOptions(options).pusherApps).toHaveLength(2);
    expect(withPusherApp({}, parseConfig([], {}).node)).toEqual({});
  });

  it('refuses one of the three alone, JSON that is not an array of objects, and invalid apps', () => {
    expect(configError(() => withPusherApp({}, parseConfig([], { HERALD_PUSHER_APP_ID: 'x' }).node)).message).toMatch(/go together/);
    configError(() => parseConfig([], { HERALD_PUSHER_APPS: '{"id":"a"}' }));
    configError(() => parseConfig([], { HERALD_PUSHER_APPS: 'not json' }));
    configError(() => parseConfig(['--config', 'h.json'], {}, () => '{"pusherApps":[1]}'));
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, secret: 'short' }] })).option).toBe('pusherApps');
    expect(optionsError(() => resolveOptions({ pusherApps: [app, { ...app, key: 'other' }] })).option).toBe('pusherApps');
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, id: 'bad id' }] })).option).toBe('pusherApps');
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, clientEventRate: 0 }] })).option).toBe('pusherApps');
    // A webhook URL with a password: fetch would refuse every request, and each failure would log the password.
    const withPassword = optionsError(() => resolveOptions({ pusherApps: [{ ...app, webhooks: [{ url: 'https://u:SECRET@hooks.example/p' }] }] }));
    expect(withPassword.option).toBe('pusherApps');
    expect(withPassword.message).toMatch(/user or password/);
    expect(withPassword.message).not.toMatch(/SECRET/);
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, webhooks: [{ url: 'ftp://x' }] }] })).option).toBe('pusherApps');
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, webhooks: [{ url: 'https://x', events: ['nope' as never] }] }] })).option).toBe(
      'pusherApps',
    );
    expect(resolveOptions({ pusherApps: [{ ...app, webhooks: [{ url: 'https://x/hook', events: ['member_added'] }] }] }).pusherApps).toHaveLength(1);
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, webhookRetryFor: 0 }] })).option).toBe('pusherApps');
    expect(optionsError(() => resolveOptions({ pusherApps: [{ ...app, batchWebhooks: 'yes' as never }] })).option).toBe('pusherApps');
  });

  it("makes one webhook endpoint per URL of each app, in Pusher's format, retried 5 minutes unless the app says otherwise", () => {
    const { format, endpoints } = pusherWebhookPlugin([
      { ...app, webhooks: [{ url: 'https://a/hook' }, { url: 'https://b/hook', events: ['client_event'] }] },
      { id: 'two', key: 'key-two', secret: 'secret-two-0123456789', webhooks: [{ url: 'https://c/hook' }], webhookRetryFor: 60_000, batchWebhooks: true },
    ]);
    expect(format.name).toBe('pusher');
    expect(endpoints.map((e) => [e.name, e.url, e.app, e.key, e.format, e.events, e.retryFor, e.batch])).toEqual([
      ['pusher.app1.1', 'https://a/hook', 'app1', app.key, 'pusher', [], 300_000, 1],
      ['pusher.app1.2', 'https://b/hook', 'app1', app.key, 'pusher', ['client_event'], 300_000, 1],
      ['pusher.two.1', 'https://c/hook', 'two', 'key-two', 'pusher', [], 60_000, format.maxBatch],
    ]);
    // Their names are reserved: a native endpoint cannot take one (metrics and dead letters would mix them up).
    const secret = `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`;
    expect(() => webhookEndpoints(resolveOptions({ webhooks: [{ name: 'pusher.app1.1', url: 'https://x/h', secret }] }))).toThrow(/pusher\./);
    expect(webhookEndpoints(resolveOptions({ webhooks: [{ url: 'https://x/h', secret }], webhookRetryFor: 5000 }))).toMatchObject([
      { name: 'default', format: 'standard', retryFor: 5000, batch: 1 },
    ]);
  });
});
