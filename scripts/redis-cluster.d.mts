/** A Redis Cluster started for the tests (scripts/redis-cluster.mjs). */
export interface TestRedisCluster {
  /** The masters' ports on 127.0.0.1. */
  readonly ports: number[];
  readonly nodes: Array<{ host: string; port: number }>;
  /** `host:port,host:port`, as HERALD_REDIS_CLUSTER takes it. */
  readonly spec: string;
  /** The port of the master that holds `key`'s slot. */
  ownerOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port`; resolves once it exited. */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again (its AOF and nodes.conf kept) and waits for cluster_state:ok. */
  restart(port: number): Promise<void>;
  /** Kills every node and deletes the directory. */
  stop(): Promise<void>;
}

export function startRedisCluster(options?: { masters?: number; nodeTimeout?: number }): Promise<TestRedisCluster>;
