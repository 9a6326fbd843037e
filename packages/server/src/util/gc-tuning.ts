import { setFlagsFromString } from 'node:v8';

/** The V8 flag `tuneGarbageCollection` sets. */
export const GC_FLAG = '--no-allocation-site-pretenuring';
/** An operator's own choice about it, on node's command line (NODE_OPTIONS takes no such V8 flag). */
const OWN_CHOICE = /(^|\s)--(no-)?allocation[-_]site[-_]pretenuring(\s|=|$)/;

/**
 * Sets the garbage-collector option the `herald` command runs with (each process, workers of `--workers` included),
 * unless the operator chose it themselves (`node --allocation-site-pretenuring ...`). True when it was set.
 *
 * `--no-allocation-site-pretenuring`: V8 watches where objects are made, and once most of a site's objects survive a
 * young-generation collection it makes that site's objects in the old generation from then on ("pretenuring"),
 * where only a full collection frees them. Some sites a publish allocates at are shared with the connect path (the
 * engine's script calls and their arguments), whose objects do live long, and a publish's objects live across a
 * Redis round trip: a run could then make a publish's short-lived objects in the old generation. Which sites tip
 * was not pinned down (`--trace-pretenuring-statistics` showed 80-90 tenured in good and bad runs alike); the effect
 * was. Measured with the Redis engine, 10k messages/s in requests of 100 (2026-12-07,
 * `npm run bench -- many-channels --kinds herald-redis --shapes batch --targets 10000`, `--trace-gc`): with
 * pretenuring, 4 runs of 7 promoted about 215 MB in 45 s and ran a full collection every 3-6 s (p99 at half the
 * rate 24-25 ms), the others about 60 MB and none; without it, 6 runs of 6 promoted 55-73 MB, at most one full
 * collection, p99 at half the rate 8.6-10.4 ms.
 *
 * A library user who embeds the gateway decides for their own process: exported for them, not called by
 * `createGateway`.
 */
export function tuneGarbageCollection(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => OWN_CHOICE.test(a))) return false;
  setFlagsFromString(GC_FLAG);
  return true;
}
