// A real Redis Cluster for the tests (vitest's Redis Cluster suites and scripts/php-tests.mjs): N masters,
// each `redis-server --cluster-enabled yes` on free ports in a temporary directory, joined with
// `redis-cli --cluster create`, ready once every node says cluster_state:ok and agrees on the slots. A node
// can be killed (SIGKILL) and restarted: its AOF (fsync always) and nodes.conf are kept, so it comes back as
// the same master with every write it acknowledged. stop() kills everything and deletes the directory.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether `port` can be listened on at 127.0.0.1. */
function free(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (+10000) is free too. */
async function freePort(taken) {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 9000);
    if (taken.has(port)) continue;
    if ((await free(port)) && (await free(port + 10000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

/** Runs redis-cli against one node; resolves its output. */
async function cli(port, ...args) {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function until(what, timeout, check) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`Redis Cluster: ${what} within ${timeout} ms${last ? ` (${last.message})` : ''}`);
}

/**
 * Starts a Redis Cluster of `masters` masters (at least 3).
 * @returns {Promise<import('./redis-cluster.d.mts').TestRedisCluster>}
 */
export async function startRedisCluster({ masters = 3, replicas = 0, nodeTimeout = 2000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-redis-cluster-'));
  const taken = new Set();
  const ports = [];
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort(taken));
  const procs = new Map();
  /** Nodes killed and not restarted: left out of the readiness checks. */
  const down = new Set();
  const live = () => ports.filter((p) => !down.has(p));

  const startNode = (port) => {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    // no stdio kept: a node's output is in its log file
    const p = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        nodeDir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(nodeTimeout),
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        // A replica's first sync goes through a file: after a diskless sync (Redis 7's default) the master
        // holds back the stream of writes until the replica's first REPLCONF ACK, up to a second later, so a
        // replica that reports master_link_status:up may have none of the writes that followed, and a master
        // killed then loses them all on failover. After a sync from disk the stream follows the file at once.
        '--repl-diskless-sync',
        'no',
        '--save',
        '',
        '--logfile',
        join(nodeDir, 'redis.log'),
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    p.on('error', () => undefined);
    procs.set(port, p);
    return p;
  };

  const ping = (port) => until(`node ${port} answering PING`, 10_000, async () => (await cli(port, 'PING')).includes('PONG'));
  const stateOk = async (port) => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
  // A replica that never synced cannot be promoted: wait for its link to the master too.
  const synced = async (port) => {
    const info = await cli(port, 'INFO', 'replication');
    return !info.includes('role:slave') || info.includes('master_link_status:up');
  };
  const ready = () =>
    until('cluster_state:ok on every node, every replica in sync', 30_000, async () =>
      (await Promise.all(live().map(async (p) => (await stateOk(p)) && (await synced(p))))).every(Boolean),
    );
  const ownerOf = async (key) => {
    const at = live()[0];
    const slot = Number((await cli(at, 'CLUSTER', 'KEYSLOT', key)).trim());
    const lines = (await cli(at, 'CLUSTER', 'SLOTS'))
      .trim()
      .split('\n')
      .map((l) => l.trim());
    // redis-cli prints each range as: start, end, then host, port, id of the master (then of its replicas),
    // one value a line.
    for (let i = 0; i + 3 < lines.length; i++) {
      const start = Number(lines[i]);
      const end = Number(lines[i + 1]);
      const port = Number(lines[i + 3]);
      if (ports.includes(port) && lines[i + 2] === '127.0.0.1' && slot >= start && slot <= end) return port;
    }
    throw new Error(`no owner found for slot ${slot}`);
  };

  const stop = async () => {
    for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await sleep(50);
    procs.clear();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const port of ports) startNode(port);
    await Promise.all(ports.map(ping));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 30_000,
    });
    await ready();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    ports,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    /** `host:port,host:port`, as HERALD_REDIS_CLUSTER takes it. */
    spec: ports.map((p) => `127.0.0.1:${p}`).join(','),
    /** The port of the master that holds `key`'s slot. */
    ownerOf,
    /** Resolves once `key`'s slot is held by a master other than `port` (a replica promoted) and the cluster is ok. */
    async promoted(key, port) {
      await until(`a new master for ${key}`, 30_000, async () => (await ownerOf(key)) !== port);
      await ready();
    },
    /**
     * Moves `key`'s slot to the master on `to`, keys and all, while it is in use (CLUSTER SETSLOT IMPORTING /
     * MIGRATING, MIGRATE in batches, then SETSLOT NODE on every master): clients meet ASK, TRYAGAIN, MOVED.
     */
    async migrate(key, to) {
      const from = await ownerOf(key);
      if (from === to) return;
      const slot = (await cli(from, 'CLUSTER', 'KEYSLOT', key)).trim();
      const id = async (port) => (await cli(port, 'CLUSTER', 'MYID')).trim();
      const [fromId, toId] = [await id(from), await id(to)];
      await cli(to, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await cli(from, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      for (;;) {
        const keys = (await cli(from, 'CLUSTER', 'GETKEYSINSLOT', slot, '10')).split('\n').filter((k) => k !== '');
        if (keys.length === 0) break;
        await cli(from, 'MIGRATE', '127.0.0.1', String(to), '', '0', '5000', 'KEYS', ...keys);
        await sleep(20);
      }
      for (const port of [to, from, ...live().filter((p) => p !== to && p !== from)]) {
        // Replicas refuse SETSLOT; the masters tell them.
        await cli(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId).catch(() => undefined);
      }
      await until(`slot ${slot} on ${to}`, 30_000, async () => (await ownerOf(key)) === to);
      await ready();
    },
    /** SIGKILLs the node on `port`; resolves once it exited. */
    async kill(port) {
      const p = procs.get(port);
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      down.add(port);
      p.kill('SIGKILL');
      await exited;
    },
    /** Starts the node on `port` again (same directory: its AOF and nodes.conf) and waits for cluster_state:ok. */
    async restart(port) {
      down.delete(port);
      startNode(port);
      await ping(port);
      await ready();
    },
    stop,
  };
}
