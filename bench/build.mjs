// Bundles the harness with esbuild. Herald is bundled from its TypeScript sources (packages/*/src), so
// `npm run bench` measures the working tree without a separate build step; third-party packages stay external.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

await build({
  entryPoints: { main: here('./src/main.ts'), server: here('./src/server.ts') },
  outdir: here('./dist'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  alias: { '@herald/protocol': here('../packages/protocol/src/index.ts') },
  plugins: [
    {
      // The Redis engine finds its Lua scripts relative to its own module; bundled, point it at the sources.
      name: 'lua-dir',
      setup(b) {
        b.onLoad({ filter: /engine\/redis\/client\.ts$/ }, async (args) => {
          const text = await readFile(args.path, 'utf8');
          const lua = pathToFileURL(here('../packages/server/lua/')).href;
          const patched = text.replace("new URL('../../../lua/', import.meta.url)", `new URL(${JSON.stringify(lua)})`);
          if (patched === text) throw new Error('engine/redis/client.ts: LUA_DIR not found, update bench/build.mjs');
          return { contents: patched, loader: 'ts' };
        });
      },
    },
  ],
  external: [
    'ws',
    'socket.io',
    '@socket.io/redis-adapter',
    'socket.io-client',
    'uWebSockets.js',
    'ioredis',
    'jose',
    'pino',
    'bufferutil',
    'utf-8-validate',
    'esbuild',
    'prettier',
  ],
  // ESM output still meets CommonJS dependencies that call require().
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
