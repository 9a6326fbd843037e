/**
 * What the CLI makes of `HERALD_*` environment variables it does not read: the ones Kubernetes injects for a
 * Service named `herald`, and near misses of the real setting names (typos).
 */

/**
 * Whether a variable is one Kubernetes injects for a Service named `herald` (docker-style service links):
 * `HERALD_SERVICE_HOST`, `HERALD_SERVICE_PORT[_<name>]`, `HERALD_PORT=<proto>://<ip>:<port>` and
 * `HERALD_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`.
 */
export function isKubernetesServiceVariable(name: string, value: string): boolean {
  if (/^HERALD_SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?$/.test(name)) return true;
  if (name === 'HERALD_PORT') return /^(tcp|udp|sctp):\/\/\S+:\d+$/i.test(value.trim());
  return /^HERALD_PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?$/.test(name);
}

/** Edit distance counting insertions, deletions, substitutions and swaps of neighbours (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The known names (at most 3) within a small edit distance of `name` (2, or a third of the part after HERALD_, at most 4), closest first. */
export function nearMisses(name: string, known: readonly string[]): string[] {
  const max = Math.min(4, Math.max(2, Math.floor((name.length - 'HERALD_'.length) / 3)));
  return known
    .map((k) => ({ k, d: distance(name, k) }))
    .filter((x) => x.d <= max)
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map((x) => x.k);
}
