/** A Redis Cluster started for the tests (scripts/redis-cluster.mjs). */
export interface TestRedisCluster {
  /** Every node's port on 127.0.0.1 (masters and replicas). */
  readonly ports: number[];
  readonly nodes: Array<{ host: string; port: number }>;
  /** `host:port,host:port`, as HERALD_REDIS_CLUSTER takes it. */
  readonly spec: string;
  /** The port of the master that holds `key`'s slot. */
  ownerOf(key: string): Promise<number>;
  /** Resolves once `key`'s slot is held by a master other than `port` (its replica promoted) and the cluster is ok. */
  promoted(key: string, port: number): Promise<void>;
  /** Moves `key`'s slot, keys and all, to the master on `to` (clients meet ASK, TRYAGAIN, MOVED). */
  migrate(key: string, to: number): Promise<void>;
  /** SIGKILLs the node on `port`; resolves once it exited. */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again (its AOF and nodes.conf kept) and waits for cluster_state:ok. */
  restart(port: number): Promise<void>;
  /** Kills every node and deletes the directory. */
  stop(): Promise<void>;
}

export function startRedisCluster(options?: { masters?: number; replicas?: number; nodeTimeout?: number }): Promise<TestRedisCluster>;
