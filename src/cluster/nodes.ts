// The node directory: which nodes are alive (heartbeats with a TTL), how many sockets each holds,
// and how many sockets each user holds on each node — so that counts and MAX_CONNECTIONS_PER_USER
// hold cluster-wide, and so that the survivors clean up after a node that died without a word.
// One interface, a memory and a Redis implementation, one contract suite
// (test/contract/node-directory.ts). Times are the callers' clocks, in ms.

export interface NodeInfo {
  id: string;
  /** Live sockets on the node at its last heartbeat. */
  connections: number;
}

export interface NodeDirectory {
  /**
   * This node is alive until `expiresAt`, with `connections` sockets. Resolves true when the
   * directory did not know the node (first beat, or it had been given up for dead, or the backend
   * lost its data): the node should then record its state again (`resync`).
   */
  heartbeat(nodeId: string, connections: number, expiresAt: number): Promise<boolean>;
  /** Nodes alive at `now`, in id order. */
  live(now: number): Promise<NodeInfo[]>;
  /**
   * Nodes whose heartbeat expired before `now`, each handed to one caller only (for `leaseMs`, after
   * which another caller may take it over if `bury` was not called).
   */
  claimDead(now: number, leaseMs: number): Promise<string[]>;
  /** Forgets a node and every count it held (after a claim, or a node's own graceful stop). */
  bury(nodeId: string): Promise<void>;
  /**
   * One more socket for `userId` on `nodeId`, unless the user already has `max` sockets on live
   * nodes (then false and nothing is counted).
   */
  addConnection(userId: string, nodeId: string, max: number): Promise<boolean>;
  /** One socket less (never below zero). */
  removeConnection(userId: string, nodeId: string): Promise<void>;
  /** Replaces what the directory holds for this node's users with `counts` (user id → sockets). */
  resync(nodeId: string, counts: ReadonlyMap<string, number>): Promise<void>;
  /** Sockets of the user across the cluster. */
  userConnections(userId: string): Promise<number>;
  dispose(): Promise<void>;
}
