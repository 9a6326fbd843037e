// Builds the bench (bench/dist/server.js, Herald from its sources) and this script, then runs it: see idle-memory.ts.
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
execFileSync(process.execPath, [here('../../../bench/build.mjs')], { stdio: 'inherit' });
await build({
  entryPoints: [here('./idle-memory.ts')],
  outfile: here('../../../bench/dist/idle-memory.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  alias: { '@herald/protocol': here('../../protocol/src/index.ts') },
  external: ['ws', 'jose'],
});
execFileSync(process.execPath, [here('../../../bench/dist/idle-memory.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
