// A TCP proxy a test can cut: "the database (or Redis) is down" without stopping a shared
// server. Bun.listen accepts, Bun.connect dials the target, bytes are piped both ways (with
// backpressure). `cut()` closes every piped connection and stops listening, so new connections
// are refused; `restore()` listens again on the same port.
import type { Socket, TCPSocketListener } from "bun";

/** Bytes waiting for a socket: before it connected, or when it would not take them all. */
class Outbox {
  socket: Socket<Side> | null = null;
  private queue: Uint8Array[] = [];

  write(bytes: Uint8Array): void {
    if (this.socket === null || this.queue.length > 0) {
      this.queue.push(bytes.slice());
      return;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.queue.push(bytes.slice(Math.max(n, 0)));
  }

  flush(): void {
    const socket = this.socket;
    if (socket === null) return;
    while (this.queue.length > 0) {
      const head = this.queue[0] as Uint8Array;
      const n = socket.write(head);
      if (n < head.length) {
        this.queue[0] = head.slice(Math.max(n, 0));
        return;
      }
      this.queue.shift();
    }
  }
}

interface Side {
  /** Where bytes read from this socket go. */
  peer: Outbox;
  /** This socket's own outbox (flushed on drain). */
  own: Outbox;
}

export interface TcpProxy {
  readonly port: number;
  /** Piped connections open now. */
  readonly connections: number;
  /** Closes every piped connection and refuses new ones. */
  cut(): void;
  /** Accepts and pipes again, on the same port. */
  restore(): void;
  stop(): void;
}

export function tcpProxy(target: { hostname: string; port: number }): TcpProxy {
  const sockets = new Set<Socket<Side>>();
  let listener: TCPSocketListener<Side> | null = null;
  let port = 0;

  const pair = (client: Socket<Side>) => {
    const toClient = new Outbox();
    const toServer = new Outbox();
    toClient.socket = client;
    client.data = { peer: toServer, own: toClient };
    sockets.add(client);
    Bun.connect<Side>({
      hostname: target.hostname,
      port: target.port,
      data: { peer: toClient, own: toServer },
      socket: {
        open(server) {
          if (!sockets.has(client)) {
            server.end();
            return;
          }
          sockets.add(server);
          toServer.socket = server;
          toServer.flush();
        },
        data(server, bytes) {
          server.data.peer.write(bytes);
        },
        drain(server) {
          server.data.own.flush();
        },
        close(server) {
          sockets.delete(server);
          client.end();
        },
        error() {},
      },
    }).catch(() => client.end());
  };

  const listen = () => {
    listener = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: pair,
        data(client, bytes) {
          client.data.peer.write(bytes);
        },
        drain(client) {
          client.data.own.flush();
        },
        close(client) {
          sockets.delete(client);
          client.data.peer.socket?.end();
        },
        error() {},
      },
    });
    port = listener.port;
  };

  const cut = () => {
    listener?.stop(true);
    listener = null;
    for (const s of sockets) s.terminate();
    sockets.clear();
  };

  listen();
  return {
    get port() {
      return port;
    },
    get connections() {
      return sockets.size;
    },
    cut,
    restore() {
      if (listener === null) listen();
    },
    stop: cut,
  };
}
