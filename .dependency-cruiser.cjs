// Dependency rules of packages/server/src (docs/architecture.md): arrows run one way,
//   cli -> gateway -> http | ingest | protocols -> observability -> webhooks -> delivery -> engine | transport | auth -> util
// with no cycles, no imports between siblings of a layer, and the third-party I/O libraries kept behind their
// seams. `npm test` runs `depcruise` with this file; a violation fails it.
const SRC = '^packages/server/src/';
const LAYERS = [
  ['util'],
  ['engine', 'transport', 'auth'],
  ['delivery'],
  ['webhooks'],
  ['observability'],
  ['http', 'ingest', 'protocols'],
  ['gateway'],
  ['cli'],
];

const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i])));
const folders = [...rank.keys()];
const forbidden = [];

for (const from of folders) {
  // Upwards: a folder may import only lower layers (and its own folder).
  const above = folders.filter((to) => rank.get(to) > rank.get(from));
  // Sideways: siblings of one layer do not import each other.
  const siblings = folders.filter((to) => to !== from && rank.get(to) === rank.get(from));
  for (const [kind, targets] of [
    ['upward', above],
    ['sibling', siblings],
  ]) {
    if (targets.length === 0) continue;
    forbidden.push({
      name: `${kind}-from-${from}`,
      comment: `${from}/ may not import ${targets.join(', ')} (${kind === 'upward' ? 'a higher layer' : 'a sibling of its layer'}; see docs/architecture.md)`,
      severity: 'error',
      from: { path: `${SRC}${from}/` },
      to: { path: `${SRC}(${targets.join('|')})/` },
    });
  }
}

forbidden.push(
  {
    name: 'no-circular',
    comment: 'No import cycles, at file level (and so at folder level).',
    severity: 'error',
    from: { path: SRC },
    to: { circular: true },
  },
  {
    name: 'only-transport-imports-websocket-libraries',
    comment: 'ws and uWebSockets.js live behind the Socket seam (transport/).',
    severity: 'error',
    from: { path: SRC, pathNot: `${SRC}transport/` },
    to: { path: '(^|/)node_modules/(ws|uWebSockets\\.js)/' },
  },
  {
    name: 'only-engine-redis-imports-ioredis',
    comment: 'The Redis client lives behind the Engine seam (engine/redis/).',
    severity: 'error',
    from: { path: SRC, pathNot: `${SRC}engine/redis/` },
    to: { path: '(^|/)node_modules/ioredis/' },
  },
  {
    name: 'engines-apart',
    comment: 'The memory and Redis engines share engine/types.ts and engine/defaults.ts, never each other.',
    severity: 'error',
    from: { path: `${SRC}engine/(memory|redis)/` },
    to: { path: `${SRC}engine/(memory|redis)/`, pathNot: `${SRC}engine/$1/` },
  },
  {
    name: 'transports-apart',
    comment: 'Each transport is one adapter beside the others.',
    severity: 'error',
    from: { path: `${SRC}transport/(ws|uws)/` },
    to: { path: `${SRC}transport/(ws|uws)/`, pathNot: `${SRC}transport/$1/` },
  },
  {
    name: 'protocols-apart',
    comment: 'Each protocol is one folder under protocols/; they share protocols/types.ts only.',
    severity: 'error',
    from: { path: `${SRC}protocols/([^/]+)/` },
    to: { path: `${SRC}protocols/[^/]+/`, pathNot: `${SRC}protocols/$1/` },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: { path: ['^packages/server/src/', 'node_modules/(ws|uWebSockets\\.js|ioredis)/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: require('node:path').join(__dirname, 'packages/server/tsconfig.json') },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    combinedDependencies: true,
  },
};
