/**
 * The dependency rules of docs/architecture.md (.dependency-cruiser.cjs), checked two ways: the real source
 * tree has no violation, and a small tree that breaks each rule on purpose is caught by every rule, so a
 * rules file that stopped matching anything (a renamed folder, a broken regex) fails here instead of
 * passing silently.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type IForbiddenRuleType } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const config = createRequire(import.meta.url)(join(root, '.dependency-cruiser.cjs')) as {
  forbidden: IForbiddenRuleType[];
  options: ICruiseOptions;
};

async function violations(baseDir: string, options: ICruiseOptions = {}): Promise<Array<{ rule: string; from: string; to: string }>> {
  const result = await cruise(['packages/server/src'], { ...config.options, ...options, baseDir, validate: true, ruleSet: { forbidden: config.forbidden } });
  if (typeof result.output === 'string') throw new Error('unexpected string output');
  return result.output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

describe('dependency rules (docs/architecture.md)', () => {
  it('hold for packages/server/src', async () => {
    expect(await violations(root)).toEqual([]);
  });

  it('catch every kind of violation they exist for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-depcruise-'));
    const file = (path: string, text: string): void => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    const src = 'packages/server/src';
    file('node_modules/ws/package.json', '{"name":"ws","main":"index.js"}');
    file('node_modules/ws/index.js', 'module.exports = {};');
    file('node_modules/ioredis/package.json', '{"name":"ioredis","main":"index.js"}');
    file('node_modules/ioredis/index.js', 'module.exports = {};');
    for (const f of [
      'util/a',
      'auth/a',
      'transport/ws/a',
      'transport/uws/a',
      'engine/memory/a',
      'engine/redis/a',
      'http/a',
      'protocols/x/a',
      'protocols/y/a',
    ]) {
      file(`${src}/${f}.js`, 'export const a = 1;\n');
    }
    // delivery reaches up into http, and sideways a cycle with itself; engine imports transport (a sibling).
    file(`${src}/delivery/a.js`, "import '../http/a.js';\nimport './b.js';\nimport 'ws';\nimport 'ioredis';\n");
    file(`${src}/delivery/b.js`, "import './a.js';\n");
    file(`${src}/engine/memory/b.js`, "import '../redis/a.js';\nimport '../../transport/ws/a.js';\n");
    file(`${src}/transport/ws/b.js`, "import '../uws/a.js';\n");
    file(`${src}/protocols/x/b.js`, "import '../y/a.js';\n");
    const found = new Set((await violations(dir, { tsPreCompilationDeps: false })).map((v) => v.rule));
    expect([...found].sort()).toEqual(
      [
        'engines-apart',
        'no-circular',
        'only-engine-redis-imports-ioredis',
        'only-transport-imports-websocket-libraries',
        'protocols-apart',
        'sibling-from-engine',
        'transports-apart',
        'upward-from-delivery',
      ].sort(),
    );
  });
});
