// Builds @herald/client: dist/index.js (ESM, protocol bundled in), dist/index.d.ts (+ dist/protocol/*.d.ts),
// and dist/herald.min.js (minified IIFE exposing `window.Herald`). Prints the IIFE's gzip size and exits
// non-zero when it is over budget.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUDGET_BYTES, esmOptions, iifeOptions, packageDir } from './bundle-options.mjs';

const pkg = packageDir;
const dist = join(pkg, 'dist');
const protocolDir = join(pkg, '..', 'protocol');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
await build(esmOptions);
await build(iifeOptions);

// Declarations: the protocol's first (into dist/protocol), then the client's against them, then point
// the client's `@herald/protocol` imports at ./protocol so the published types need no other package.
const run = (args) => {
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: pkg, stdio: 'inherit' });
  } catch {
    // tsc already printed the diagnostics.
    console.error(`tsc ${args.join(' ')} failed`);
    process.exit(1);
  }
};
run([
  '-p',
  join(protocolDir, 'tsconfig.json'),
  '--emitDeclarationOnly',
  '--composite',
  'false',
  '--incremental',
  'false',
  '--declarationMap',
  'false',
  '--outDir',
  join(dist, 'protocol'),
]);
run(['-p', 'tsconfig.build.json']);
for (const file of readdirSync(dist)) {
  if (!file.endsWith('.d.ts')) continue;
  const path = join(dist, file);
  const text = readFileSync(path, 'utf8');
  writeFileSync(path, text.replaceAll(`'@herald/protocol'`, `'./protocol/index.js'`).replaceAll(`"@herald/protocol"`, `"./protocol/index.js"`));
}
for (const file of readdirSync(dist)) {
  if (file.endsWith('.d.ts') && readFileSync(join(dist, file), 'utf8').includes('@herald/protocol')) {
    console.error(`dist/${file} still imports @herald/protocol`);
    process.exit(1);
  }
}
run(['-p', 'tsconfig.dist-check.json']);

const min = readFileSync(join(dist, 'herald.min.js'));
const gz = gzipSync(min, { level: 9 }).length;
const kib = (n) => `${(n / 1024).toFixed(2)} KiB`;
console.log(`dist/herald.min.js: ${kib(min.length)} minified, ${kib(gz)} (${gz} bytes) min+gzip, budget ${kib(BUDGET_BYTES)}`);
if (gz > BUDGET_BYTES) {
  console.error(`dist/herald.min.js is over budget by ${gz - BUDGET_BYTES} bytes`);
  process.exit(1);
}
