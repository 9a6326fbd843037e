import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GC_FLAG, tuneGarbageCollection } from '../src/util/gc-tuning.js';

/**
 * How many allocation sites V8 decides to pretenure in a fresh `node` that keeps 400 000 small objects alive across
 * young-generation collections, after `setFlagsFromString(flag)` at run time when given (as tuneGarbageCollection
 * does). V8 pretenures a site only at a collection of a young generation at its largest size, which it reaches
 * by heuristics of its own (a loaded CI machine did not within the loop): the young generation is fixed at 1 MB
 * here, so that every collection is one.
 */
function sitesTenured(flag?: string): number {
  const script = `
    const v8 = require('node:v8');
    ${flag === undefined ? '' : `v8.setFlagsFromString(${JSON.stringify(flag)});`}
    const keep = [];
    const make = (i) => ({ a: i, b: [i, i + 1] });
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < 20000; i++) keep.push(make(i));
      globalThis.gc({ type: 'minor' });
    }
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--min-semi-space-size=1', '--max-semi-space-size=1', '--trace-pretenuring-statistics', '-e', script], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`node exited ${String(r.status)}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.includes('=> tenure')).length;
}

describe('tuneGarbageCollection (the herald command runs with it)', () => {
  it('turns allocation-site pretenuring off, and setting it at run time takes effect', () => {
    expect(GC_FLAG).toBe('--no-allocation-site-pretenuring');
    expect(sitesTenured()).toBeGreaterThan(0);
    expect(sitesTenured(GC_FLAG)).toBe(0);
  });

  it("leaves an operator's own choice on node's command line alone", () => {
    expect(tuneGarbageCollection(['--allocation-site-pretenuring'])).toBe(false);
    expect(tuneGarbageCollection(['--max-old-space-size=512', '--no-allocation-site-pretenuring'])).toBe(false);
    expect(tuneGarbageCollection(['--allocation_site_pretenuring'])).toBe(false);
    // Anything else: set (in this test process too, where it changes nothing the tests see).
    expect(tuneGarbageCollection(['--max-old-space-size=512', '--allocation-site-pretenuring-threshold'])).toBe(true);
  });
});
