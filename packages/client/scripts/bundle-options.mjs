// esbuild options of the two JavaScript outputs, shared by scripts/build.mjs and test/bundle.test.ts
// (which runs the minified bundle, so property mangling is tested, not assumed).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Budget of dist/herald.min.js, minified and gzipped: 6 KiB for the client on its own connection, 4 KiB more
 * for tabs sharing one connection (election, relay, tab messages; see README "Sharing one connection across
 * tabs"), 2 KiB for what SDK 2 adds to every page (presence members, client publish, inbox acknowledgements),
 * 256 bytes for the two timeouts that keep a client from waiting for good (a `getToken()` that never
 * settles, a subscribe whose answer never comes), and 64 for presence frames that reach a subscription after its
 * `subscribed` already counted them (told to nobody).
 */
export const BUDGET_BYTES = 12 * 1024 + 256 + 64;

/** The package directory. */
export const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));

/** Bundle @herald/protocol from its sources, so a stale or missing packages/protocol/dist cannot leak in. */
const protocolFromSource = {
  name: 'herald-protocol-source',
  setup(b) {
    const entry = join(packageDir, '..', 'protocol', 'src', 'index.ts');
    b.onResolve({ filter: /^@herald\/protocol$/ }, () => ({ path: entry }));
  },
};

const common = {
  absWorkingDir: packageDir,
  bundle: true,
  platform: 'neutral',
  target: 'es2020',
  legalComments: 'none',
  plugins: [protocolFromSource],
  logLevel: 'warning',
};

/** dist/index.js: ESM, readable (applications' bundlers minify it). */
export const esmOptions = { ...common, entryPoints: ['src/index.ts'], format: 'esm', outfile: 'dist/index.js', sourcemap: true };

/**
 * dist/herald.min.js: minified IIFE assigning `var Herald`. Private and internal members are named with
 * a leading underscore, which lets esbuild shorten them (nothing outside the bundle sees them; no wire
 * or DOM property starts with `_`). That keeps the bundle within its budget.
 */
export const iifeOptions = {
  ...common,
  entryPoints: ['src/browser.ts'],
  format: 'iife',
  globalName: 'Herald',
  minify: true,
  mangleProps: /^_/,
  outfile: 'dist/herald.min.js',
  sourcemap: true,
};
