/**
 * `npm run bench -- <scenario> [--kinds a,b] [--reps n | --reps scenario=n,...] [--seconds n] [--profile]`
 * many-channels: `[--shapes batch,single,single-new] [--connections n] [--http-connections n] [--targets a,b,...]`;
 * on a busy machine `--noisy-retries 0 --quiet-wait 1` keep a smoke run short, and `--no-write` keeps its results out of
 * bench/results and docs/.
 * Scenarios: fanout, many-channels, idle-memory, connect-rate, latency, cluster, all.
 * The harness is the load generator: it pins itself to core 1 and each server to core 0 (taskset),
 * raises its open-file limit, prints a table with ratios, and writes bench/results/*.json and
 * docs/benchmarks.svg.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync as writeFile } from 'node:fs';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { deleteRedisPrefix, LOAD_CORE, profileServersInto } from './harness.js';
import { KINDS, type Kind } from './kinds.js';
import { SHAPES, type Shape } from './publisher.js';
import { markdown, svg, type Results } from './report.js';
import { noise } from './rig.js';
import { cluster, connectRate, fanout, idleMemory, latency, manyChannels, type ScenarioResult, type Settings } from './scenarios.js';

const SCENARIOS = ['fanout', 'many-channels', 'idle-memory', 'connect-rate', 'latency', 'cluster'] as const;
type Scenario = (typeof SCENARIOS)[number];

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const RESULTS = here('../results');
const DOCS = here('../../docs');

// Re-run pinned to the load-generator core, with the open-file limit raised for 10 000 connections.
if (process.env['HERALD_BENCH_PINNED'] !== '1') {
  const args = process.argv.slice(1).map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
  const sh = `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec taskset -c ${LOAD_CORE} '${process.execPath}' ${args.join(' ')}`;
  const r = spawnSync('bash', ['-c', sh], { stdio: 'inherit', env: { ...process.env, HERALD_BENCH_PINNED: '1' } });
  process.exit(r.status ?? 1);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const scenario = (process.argv[2] ?? 'all') as Scenario | 'all' | 'report';
if (scenario !== 'all' && scenario !== 'report' && !SCENARIOS.includes(scenario)) {
  console.error(`unknown scenario ${scenario}; one of: ${SCENARIOS.join(', ')}, all (or: report, to redraw tables and chart)`);
  process.exit(2);
}
let kinds = (arg('kinds')?.split(',') ?? [...KINDS]) as Kind[];
for (const kd of kinds) if (!KINDS.includes(kd)) throw new Error(`unknown kind ${kd}; one of ${KINDS.join(', ')}`);
try {
  await import('uWebSockets.js');
} catch {
  console.warn('uWebSockets.js is not installed: skipping the uws and herald-uws servers');
  kinds = kinds.filter((kd) => kd !== 'uws' && kd !== 'herald-uws');
}
/**
 * Repetitions per scenario (medians are reported): `--reps 3` for all, or `--reps many-channels=1,fanout=3`
 * for some (the others keep their default). The defaults keep `all` near 25 minutes on two cores.
 */
const DEFAULT_REPS: Record<Scenario, number> = { fanout: 2, latency: 1, 'many-channels': 1, 'idle-memory': 1, 'connect-rate': 2, cluster: 2 };
function repsFor(name: Scenario): number {
  const v = arg('reps');
  if (v === undefined) return DEFAULT_REPS[name];
  if (!v.includes('=')) return Number(v);
  for (const part of v.split(',')) {
    const [n, r] = part.split('=');
    if (n === name) return Number(r);
  }
  return DEFAULT_REPS[name];
}
/** `--no-write` (a smoke run): print the tables, write nothing (latest.json, the docs and the chart stay as committed). */
const noWrite = process.argv.includes('--no-write');
const writeFileSync = (path: string, text: string): void => {
  if (!noWrite) writeFile(path, text);
};
const ulimit = spawnSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();

const base: Settings = {
  kinds,
  reps: 2,
  seconds: Number(arg('seconds') ?? 2),
  subscribers: Number(arg('subscribers') ?? 2000),
  probes: 5,
  log: (line) => console.log(line),
};
if (arg('noisy-retries') !== undefined) noise.retries = Number(arg('noisy-retries'));
if (arg('quiet-wait') !== undefined) noise.waitMs = Number(arg('quiet-wait')) * 1000;
if (process.argv.includes('--profile')) {
  base.profileDir = `${RESULTS}/profiles`;
  mkdirSync(base.profileDir, { recursive: true });
  profileServersInto(base.profileDir);
}
const maxConnections = Math.max(1000, Number(ulimit) - 500);
const idleConnections = Math.min(Number(arg('idle-connections') ?? 10_000), maxConnections);

mkdirSync(RESULTS, { recursive: true });
const latestPath = `${RESULTS}/latest.json`;
const results: Results = existsSync(latestPath)
  ? (JSON.parse(readFileSync(latestPath, 'utf8')) as Results)
  : { date: '', machine: {}, command: '', scenarios: {} };
if (scenario !== 'report') {
  results.date = new Date().toISOString();
  results.command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
}
results.machine = {
  cpus: `${cpus().length} x ${cpus()[0]?.model.trim() ?? '?'}`,
  node: process.version,
  kernel: release(),
  ulimit: Number(ulimit),
};

/** Formats generated files the way `npm run lint` (prettier --check) expects them. */
async function pretty(text: string, parser: 'json' | 'markdown', file: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, parser });
  } catch {
    return text;
  }
}

const save = async (r: ScenarioResult): Promise<void> => {
  r.params['run'] = `${results.command} (${results.date.slice(0, 16).replace('T', ' ')} UTC)`;
  results.scenarios[r.scenario] = r;
  writeFileSync(latestPath, await pretty(JSON.stringify(results), 'json', latestPath));
  const file = `${RESULTS}/${r.scenario}-${results.date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, await pretty(JSON.stringify(r), 'json', file));
};

// Ctrl-C: the servers exit with us (IPC disconnect); the Redis keys of this run are deleted here.
process.on('SIGINT', () => {
  deleteRedisPrefix(`herald-bench-${process.pid}-`);
  deleteRedisPrefix(`herald-bench-cluster-${process.pid}-`);
  process.exit(130);
});

const started = Date.now();
const run = async (name: Scenario): Promise<void> => {
  const t0 = Date.now();
  console.log(`\n=== ${name} (${kinds.join(', ')})`);
  await runScenario(name);
  console.log(`=== ${name} took ${((Date.now() - t0) / 60000).toFixed(1)} min`);
};
const runScenario = async (name: Scenario): Promise<void> => {
  switch (name) {
    case 'fanout':
      await save(await fanout({ ...base, reps: repsFor('fanout') }));
      break;
    case 'latency': {
      const sustained: Partial<Record<Kind, number>> = {};
      const f = results.scenarios['fanout'];
      for (const kd of kinds) {
        const v = f?.kinds[kd]?.median['sustained'];
        if (v !== undefined) sustained[kd] = v;
      }
      await save(await latency({ ...base, reps: repsFor('latency') }, sustained));
      break;
    }
    case 'many-channels': {
      const shapes = (arg('shapes')?.split(',') ?? [...SHAPES]) as Shape[];
      for (const sh of shapes) if (!SHAPES.includes(sh)) throw new Error(`unknown shape ${sh}; one of ${SHAPES.join(', ')}`);
      // 5000 by default (the issue-13 measurement): per-message cost hardly depends on it, connect time does.
      const connections = Math.min(maxConnections, Number(arg('connections') ?? 5000));
      const httpConnections = Number(arg('http-connections') ?? 32);
      const targets = arg('targets')?.split(',').map(Number);
      for (const r of await manyChannels(
        { ...base, reps: repsFor('many-channels') },
        { connections, shapes, httpConnections, ...(targets ? { targets } : {}) },
      ))
        await save(r);
      break;
    }
    case 'idle-memory':
      await save(await idleMemory({ ...base, reps: repsFor('idle-memory') }, idleConnections));
      break;
    case 'connect-rate':
      await save(await connectRate({ ...base, reps: repsFor('connect-rate') }, 5000, 200));
      break;
    case 'cluster':
      await save(await cluster({ ...base, kinds: ['herald-redis'], reps: repsFor('cluster') }));
      break;
  }
};

if (scenario === 'all') for (const s of SCENARIOS) await run(s);
else if (scenario !== 'report') await run(scenario);

const md = markdown(results);
console.log(`\n${md}\n`);
writeFileSync(`${RESULTS}/latest.md`, await pretty(md, 'markdown', `${RESULTS}/latest.md`));
// docs/benchmarks.md carries the latest tables between two markers.
const docPath = `${DOCS}/benchmarks.md`;
if (existsSync(docPath)) {
  const doc = readFileSync(docPath, 'utf8');
  const a = doc.indexOf('<!-- results:start -->');
  const b = doc.indexOf('<!-- results:end -->');
  if (a >= 0 && b > a) writeFileSync(docPath, await pretty(`${doc.slice(0, a)}<!-- results:start -->\n\n${md}\n\n${doc.slice(b)}`, 'markdown', docPath));
}
mkdirSync(DOCS, { recursive: true });
writeFileSync(`${DOCS}/benchmarks.svg`, svg(results));
console.log(
  `${noWrite ? 'not written (--no-write)' : 'results: bench/results/latest.json, chart: docs/benchmarks.svg'} (${((Date.now() - started) / 60000).toFixed(1)} min)`,
);
process.exit(0);
