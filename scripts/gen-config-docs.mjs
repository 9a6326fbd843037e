#!/usr/bin/env node
// Writes docs/configuration.md from the configuration schema (packages/server/src/cli/config.ts).
// Needs the built server: npx tsc -b packages/server && node scripts/gen-config-docs.mjs
// packages/server/test/docs.test.ts fails when the committed file differs from a fresh render.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
let renderConfigurationDoc;
try {
  ({ renderConfigurationDoc } = await import(new URL('packages/server/dist/cli/config-docs.js', root).href));
} catch (err) {
  process.stderr.write(`gen-config-docs: cannot load packages/server/dist/cli/config-docs.js; build first (npx tsc -b packages/server)\n${err}\n`);
  process.exit(1);
}
const target = fileURLToPath(new URL('docs/configuration.md', root));
writeFileSync(target, renderConfigurationDoc());
process.stdout.write(`wrote ${target}\n`);
