/** CPU time and RSS of a process, read from /proc (Linux). */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // CLK_TCK on Linux

/** utime + stime of `pid` in seconds (all its threads: JS, GC, libuv pool). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: field 3 is state, so utime (14) and stime (15) sit at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** Resident set size of `pid` in bytes. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy and total ticks of each core, from /proc/stat (busy excludes idle and iowait). */
export function coreTicks(): Array<{ busy: number; total: number }> {
  const out: Array<{ busy: number; total: number }> = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!/^cpu\d/.test(line)) continue;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out.push({ busy: total - (v[3] ?? 0) - (v[4] ?? 0), total });
  }
  return out;
}

/** Measures the CPU of several processes over a window, as a percentage of one core. */
export class CpuWindow {
  private readonly start: number[];
  private readonly cores = coreTicks();
  private readonly t0 = performance.now();

  constructor(private readonly pids: readonly number[]) {
    this.start = pids.map(cpuSeconds);
  }

  /** Percent of one core per pid since construction. */
  read(): number[] {
    const dt = (performance.now() - this.t0) / 1000;
    return this.pids.map((pid, i) => Math.round(((cpuSeconds(pid) - (this.start[i] as number)) / dt) * 100));
  }

  /** Percent busy of each core since construction (whoever used it: a noisy machine shows here). */
  coresBusy(): number[] {
    const now = coreTicks();
    return now.map((c, i) => {
      const s = this.cores[i] ?? { busy: 0, total: 0 };
      return c.total > s.total ? Math.round(((c.busy - s.busy) / (c.total - s.total)) * 100) : NaN;
    });
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}
