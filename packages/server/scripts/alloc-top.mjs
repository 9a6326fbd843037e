#!/usr/bin/env node
/**
 * Sums a sampling heap profile (a `.heapprofile` of HERALD_PERF_ALLOC or COST_ALLOC) by allocating function:
 * bytes per unit of work (`per`: the requests or connects of the run), the top N.
 *
 *   node packages/server/scripts/alloc-top.mjs <file.heapprofile> [per=1] [N=30]
 */
import { readFileSync } from 'node:fs';

const [file, perText, nText] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: alloc-top.mjs <file.heapprofile> [per=1] [N=30]\n');
  process.exit(2);
}
const per = Number(perText ?? 1);
const { head } = JSON.parse(readFileSync(file, 'utf8'));
const bySite = new Map();
let total = 0;
(function walk(node) {
  const f = node.callFrame;
  const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  total += node.selfSize;
  for (const c of node.children) walk(c);
})(head);
console.log(`${(total / per).toFixed(0)} bytes per unit (${(total / 1e6).toFixed(1)} MB sampled)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(nText ?? 30))) {
  console.log(`${(bytes / per).toFixed(0).padStart(7)}  ${site}`);
}
