// Builds the admin dashboard (packages/server/admin) into packages/server/dist/admin: admin.js (the page's
// TypeScript and the browser SDK, bundled and minified by esbuild), index.html and admin.css. The browser SDK
// and the protocol are bundled from their sources, so the build needs no other package built first.
// Files are written to a temporary name and renamed, so a gateway reading them never sees half a file.
//
//   node scripts/build-admin.mjs            type-check (tsc -p admin/tsconfig.json), then bundle
//   node scripts/build-admin.mjs --no-check bundle only
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/server */
export const serverDir = dirname(dirname(fileURLToPath(import.meta.url)));
/** The dashboard's sources. */
export const adminSrc = join(serverDir, 'admin');
/** Where the gateway serves them from (src/http/admin.ts: ADMIN_ASSETS). */
export const adminOut = join(serverDir, 'dist', 'admin');

const sources = (pkg) => join(serverDir, '..', pkg, 'src', 'index.ts');

/** Type-checks the dashboard; throws with tsc's output on errors. */
export function checkAdmin() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(adminSrc, 'tsconfig.json')], { stdio: 'inherit' });
}

/** Bundles and copies the dashboard into `outDir`. */
export async function buildAdmin(outDir = adminOut) {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: serverDir,
    entryPoints: [join(adminSrc, 'admin.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
    alias: { '@herald/client': sources('client'), '@herald/protocol': sources('protocol') },
  });
  const tmp = (name) => join(outDir, `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp('admin.js'), result.outputFiles[0].contents);
  renameSync(tmp('admin.js'), join(outDir, 'admin.js'));
  for (const name of ['index.html', 'admin.css']) {
    copyFileSync(join(adminSrc, name), tmp(name));
    renameSync(tmp(name), join(outDir, name));
  }
}

/** Whether dist/admin is missing or older than a source of the dashboard (or of the SDK it bundles). */
export function adminBuildIsStale(outDir = adminOut) {
  let built;
  try {
    built = Math.min(...['admin.js', 'index.html', 'admin.css'].map((f) => statSync(join(outDir, f)).mtimeMs));
  } catch {
    return true;
  }
  const newest = (dir) =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  return [adminSrc, join(serverDir, '..', 'client', 'src'), join(serverDir, '..', 'protocol', 'src'), join(serverDir, 'src', 'observability')].some(
    (dir) => newest(dir) > built,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--no-check')) {
    try {
      checkAdmin();
    } catch {
      console.error('the admin dashboard does not type-check (tsc -p packages/server/admin/tsconfig.json)');
      process.exit(1);
    }
  }
  await buildAdmin();
  console.log(`admin dashboard: ${adminOut}`);
}
