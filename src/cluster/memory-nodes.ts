// In-process node directory: for nodes sharing one process (tests), and the contract's reference.
import type { NodeDirectory, NodeInfo } from "./nodes.ts";

export class MemoryNodeDirectory implements NodeDirectory {
  private readonly nodes = new Map<string, { connections: number; expiresAt: number }>();
  /** node id → claim lease end (Date.now() ms) */
  private readonly claims = new Map<string, number>();
  /** user id → node id → sockets */
  private readonly users = new Map<string, Map<string, number>>();

  async heartbeat(nodeId: string, connections: number, expiresAt: number): Promise<boolean> {
    const known = this.nodes.has(nodeId);
    this.nodes.set(nodeId, { connections, expiresAt });
    return !known;
  }

  async live(now: number): Promise<NodeInfo[]> {
    return [...this.nodes]
      .filter(([, n]) => n.expiresAt > now)
      .map(([id, n]) => ({ id, connections: n.connections }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async claimDead(now: number, leaseMs: number): Promise<string[]> {
    const claimed: string[] = [];
    for (const [id, n] of this.nodes) {
      if (n.expiresAt > now) continue;
      // The lease runs on this process's clock, like a TTL on the backend: it outlives a claimer
      // that died before burying the node.
      const clock = Date.now();
      if ((this.claims.get(id) ?? 0) > clock) continue;
      this.claims.set(id, clock + leaseMs);
      claimed.push(id);
    }
    return claimed.sort();
  }

  async bury(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    this.claims.delete(nodeId);
    for (const [userId, perNode] of this.users)
      if (perNode.delete(nodeId) && perNode.size === 0) this.users.delete(userId);
  }

  async addConnection(userId: string, nodeId: string, max: number): Promise<boolean> {
    let perNode = this.users.get(userId);
    if (perNode === undefined) {
      perNode = new Map();
      this.users.set(userId, perNode);
    }
    let total = 0;
    for (const n of perNode.values()) total += n;
    if (total >= max) {
      if (perNode.size === 0) this.users.delete(userId);
      return false;
    }
    perNode.set(nodeId, (perNode.get(nodeId) ?? 0) + 1);
    return true;
  }

  async removeConnection(userId: string, nodeId: string): Promise<void> {
    const perNode = this.users.get(userId);
    const n = perNode?.get(nodeId);
    if (perNode === undefined || n === undefined) return;
    if (n > 1) perNode.set(nodeId, n - 1);
    else {
      perNode.delete(nodeId);
      if (perNode.size === 0) this.users.delete(userId);
    }
  }

  async resync(nodeId: string, counts: ReadonlyMap<string, number>): Promise<void> {
    for (const [userId, perNode] of this.users)
      if (!((counts.get(userId) ?? 0) > 0) && perNode.delete(nodeId) && perNode.size === 0)
        this.users.delete(userId);
    for (const [userId, n] of counts) {
      if (n <= 0) continue;
      let perNode = this.users.get(userId);
      if (perNode === undefined) {
        perNode = new Map();
        this.users.set(userId, perNode);
      }
      perNode.set(nodeId, n);
    }
  }

  async userConnections(userId: string): Promise<number> {
    let total = 0;
    for (const n of this.users.get(userId)?.values() ?? []) total += n;
    return total;
  }

  async dispose(): Promise<void> {
    this.nodes.clear();
    this.claims.clear();
    this.users.clear();
  }
}
