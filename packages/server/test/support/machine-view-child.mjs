// Run by cluster-processes.test.ts: the machine view of `--workers` (cli/workers.ts) with two workers and no gateway.
// Worker "asker" joins with a stand-in gateway whose only figure is probe_total 1, and asks for the machine's
// /metrics; the other worker is one the primary must not wait for: `starting` never joins (its gateway is not up
// yet), `exits` joins and exits when asked for its figures. The primary waits up to 10 minutes for an answer, so an
// answer comes back from it only if it did not wait for that worker; the asker's own fallback (after 4 s) answers
// LOCAL. Prints the asker's answer as one JSON line and exits.
import cluster from 'node:cluster';
import { Registry, Counter } from 'prom-client';

const { joinMachineView, serveMachineView } = await import(new URL('../../dist/cli/workers.js', import.meta.url).href);
const role = process.env.ROLE;

if (cluster.isPrimary) {
  const scenario = process.argv[2];
  serveMachineView('n1', 600_000);
  const asker = cluster.fork({ ROLE: 'asker' });
  const other = cluster.fork({ ROLE: scenario });
  // The asker asks once both workers are up (each says so once it is where its role needs it).
  let ready = 0;
  const go = () => ++ready === 2 && asker.send({ go: true });
  asker.on('message', (m) => {
    if (m?.up) go();
    if (m?.result !== undefined) {
      process.stdout.write(`${JSON.stringify({ result: m.result })}\n`);
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      process.exit(0);
    }
  });
  other.on('message', (m) => m?.up && go());
} else if (role === 'asker') {
  const registry = new Registry();
  new Counter({ name: 'probe_total', help: 'a figure of this worker', registers: [registry] }).inc(1);
  let machine;
  joinMachineView({
    metrics: { registry, renderLocal: async () => 'LOCAL' },
    snapshot: () => ({}),
    useMachine: (m) => (machine = m),
  });
  process.on('message', async (m) => {
    if (m?.go) process.send({ result: await machine.metrics() });
  });
  process.send({ up: true });
} else if (role === 'starting') {
  process.send({ up: true });
  // Keeps running, never joining: a worker whose gateway is still starting.
  setInterval(() => undefined, 1000);
} else if (role === 'exits') {
  joinMachineView({ metrics: { registry: new Registry(), renderLocal: async () => 'LOCAL' }, snapshot: () => ({}), useMachine: () => undefined });
  // Asked for its figures, it goes away without answering (as a worker killed at that moment).
  process.on('message', (m) => m?.herald === 'collect' && process.exit(0));
  process.send({ up: true });
}
