#!/usr/bin/env node
// The `herald` command. A committed file (not a build output), so that npm links it at install time and
// `npx herald` works on a fresh clone; it runs the compiled CLI, and says how to build it when it is missing.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('herald: the gateway is not built yet. Run `npm run build` (or `npm start`, which builds first) in the repository.\n');
  process.exit(1);
}
await import(cli.href);
