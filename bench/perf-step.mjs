#!/usr/bin/env node
/**
 * Where one-message publishes cost CPU, per server, with Linux `perf` rather than the V8 profiler: runs one step of
 * the many-channels scenario (`npm run bench -- many-channels --shapes <shape> --targets <rate>`) for each kind,
 * attaches `perf record -g` to the pinned server once it is busy, and reports per kind the server's CPU per request
 * split into kernel, JIT code and the rest of the `node` binary (V8 builtins, inline-cache handlers, GC, C++
 * bindings), its GC share, and the JS frames holding the most user-space samples (inclusive).
 *
 *   node bench/perf-step.mjs [--kinds herald,ws] [--target 10000] [--shape single|single-new|batch] [--seconds 15] [--record 8] [--top 25] [--leaves 0]
 *
 * `--leaves N` also lists the N user-space symbols with the most samples of their own (self time: the builtin, IC
 * handler, GC phase or JS function the CPU was in), where the JS frames (inclusive) do not say what inside them costs.
 *
 * `--target` is messages per second in every shape; in `batch` (up to 100 messages per request) the figures are
 * per message rather than per request.
 *
 * Needs `perf` and the right to attach to a process (root, or kernel.perf_event_paranoid <= 1). Why not `--profile`
 * (V8's sampler): its samples of a native call include whatever the thread waited for, and its own cost (about 1.5x
 * here) is not spread evenly; it showed the delivery write of Herald at twice the minimal `ws` server's, where perf
 * shows the same kernel cost for both (2026-12-07, docs/benchmarks.md).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'herald,ws' },
    target: { type: 'string', default: '10000' },
    shape: { type: 'string', default: 'single' },
    seconds: { type: 'string', default: '15' },
    record: { type: 'string', default: '8' },
    top: { type: 'string', default: '25' },
    leaves: { type: 'string', default: '0' },
  },
});
if (!['single', 'single-new', 'batch'].includes(o.shape)) throw new Error('--shape must be single, single-new or batch');
const unit = o.shape === 'batch' ? 'message' : 'request';
const kinds = o.kinds.split(',');
const benchDir = dirname(fileURLToPath(import.meta.url));
const target = Number(o.target);
const recordSeconds = Number(o.record);
if (!(recordSeconds > 0 && recordSeconds < Number(o.seconds))) throw new Error('--record must be shorter than --seconds');
try {
  execFileSync('perf', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('perf-step: needs `perf` (Debian: apt-get install linux-perf)');
  process.exit(2);
}

const ticks = (pid) => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
};
const serverOf = (kind) => {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('dist/server.js')) && argv.includes(kind)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
};

/** Waits for `kind`'s server to be busy (the step has started), then records it; resolves with the data file and the pid. */
async function recordWhenBusy(kind, done) {
  const out = join(tmpdir(), `herald-perf-step-${kind}-${process.pid}.data`);
  while (!done()) {
    const pid = serverOf(kind);
    const a = pid && ticks(pid);
    await new Promise((r) => setTimeout(r, 1000));
    const b = pid && ticks(pid);
    // More than a third of a core for a second: the publishes are running (connecting 5000 clients is shorter).
    if (a !== undefined && b !== undefined && b - a > 33) {
      await new Promise((r) => setTimeout(r, 2000));
      execFileSync('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', out, '--', 'sleep', String(recordSeconds)], { stdio: 'ignore' });
      return { out, pid };
    }
  }
  return undefined;
}

const GC = /Scaveng|MarkCompact|Heap::|Sweeper|Marking|Evacuat|ConcurrentMark|IncrementalMarking|RecordWrite|PagedSpace|NewSpace|MinorMC/;

function analyze(file) {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'ip,sym'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  let total = 0;
  let kernel = 0;
  let jit = 0;
  let gc = 0;
  const frames = new Map();
  const leaves = new Map();
  for (const block of text.split('\n\n')) {
    const lines = block
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    if (lines.length === 0) continue;
    total++;
    const syms = lines.map((l) => l.slice(l.indexOf(' ') + 1));
    const leafIp = lines[0].split(' ')[0];
    if (leafIp.startsWith('ffff')) {
      kernel++;
      continue;
    }
    if (syms[0].startsWith('JS:')) jit++;
    const leaf = syms[0].replace(/file:\/\/\S*\/bench\/dist\//, '').replace(/\S*node_modules\//, '');
    leaves.set(leaf, (leaves.get(leaf) ?? 0) + 1);
    if (syms.some((s) => GC.test(s))) gc++;
    const seen = new Set();
    for (const s of syms) {
      if (!s.startsWith('JS:')) continue;
      const k = s
        .replace(/^JS:[*^~]?/, '')
        .replace(/file:\/\/\S*\/bench\/dist\//, '')
        .replace(/\S*node_modules\//, '');
      if (seen.has(k)) continue;
      seen.add(k);
      frames.set(k, (frames.get(k) ?? 0) + 1);
    }
  }
  return { total, kernel, jit, native: total - kernel - jit, gc, frames, leaves };
}

let finished = false;
const recordings = kinds.map((kind) => recordWhenBusy(kind, () => finished));
const args = ['run', 'bench', '--', 'many-channels', '--kinds', o.kinds, '--shapes', o.shape, '--targets', String(target), '--seconds', o.seconds];
const bench = spawn('npm', [...args, '--reps', '1', '--no-write'], {
  env: { ...process.env, HERALD_BENCH_NODE_ARGS: `${process.env.HERALD_BENCH_NODE_ARGS ?? ''} --perf-basic-prof`.trim() },
  stdio: ['ignore', 'pipe', 'inherit'],
});
bench.stdout.on('data', (d) => {
  for (const line of String(d).split('\n')) if (/target .* got /.test(line)) console.log(line);
});
await new Promise((r) => bench.on('exit', r));
finished = true;
const files = await Promise.all(recordings);

// Messages in the recorded window (requests in the single shapes): the step's rate times its length; a server that
// did not keep up (its `got` below the target) handled fewer, and reads low here.
const requests = target * recordSeconds;
const us = (samples) => ((samples / 999 / requests) * 1e6).toFixed(1);
console.log(`\nserver CPU per ${unit} (µs), from perf samples at 999 Hz over ${recordSeconds} s at ${target} ${unit}s/s:`);
console.log('kind           total  kernel   JIT  node binary (builtins, ICs, GC, C++)   of which GC');
const results = new Map();
kinds.forEach((kind, i) => {
  const rec = files[i];
  if (rec === undefined) {
    console.log(`${kind.padEnd(13)} never busy: no recording`);
    return;
  }
  const r = analyze(rec.out);
  results.set(kind, r);
  // The recording, and what --perf-basic-prof left: the JIT symbol map and V8's log (in the bench's directory).
  rmSync(rec.out, { force: true });
  rmSync(`/tmp/perf-${rec.pid}.map`, { force: true });
  for (const f of readdirSync(benchDir)) if (f.startsWith('isolate-') && f.endsWith(`-${rec.pid}-v8.log`)) rmSync(join(benchDir, f), { force: true });
  console.log(
    `${kind.padEnd(13)} ${us(r.total).padStart(6)} ${us(r.kernel).padStart(7)} ${us(r.jit).padStart(5)} ${us(r.native).padStart(12)} ${us(r.gc).padStart(31)}`,
  );
});
for (const [kind, r] of results) {
  console.log(`\n${kind}: JS frames by user-space samples (inclusive; µs per ${unit})`);
  for (const [k, v] of [...r.frames].sort((a, b) => b[1] - a[1]).slice(0, Number(o.top))) console.log(`${us(v).padStart(7)}  ${k}`);
  if (Number(o.leaves) > 0) {
    console.log(`\n${kind}: user-space symbols by samples of their own (self; µs per ${unit})`);
    for (const [k, v] of [...r.leaves].sort((a, b) => b[1] - a[1]).slice(0, Number(o.leaves))) console.log(`${us(v).padStart(7)}  ${k.slice(0, 140)}`);
  }
}
