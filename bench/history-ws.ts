// The reconnect storm's WebSocket client (bench/history-client.ts): bench/raw-ws.ts's minimal
// client over Bun.connect (text frames out masked with a zero key, pings answered, no event object
// per frame, a timeout on every connect) from a chosen source address (`localAddress`, so sockets
// spread over 127.0.0.x on both ends), with whole text frames handed over as strings, since the
// storm client parses every frame as JSON.
import { RawSocket } from "./raw-ws.ts";

export class StormSocket {
  private constructor(private readonly ws: RawSocket) {}

  /** Connects from `localAddress` (null: the kernel's choice) and upgrades; resolves on 101. */
  static async connect(
    host: string,
    port: number,
    localAddress: string | null,
    path: string,
    timeoutMs: number,
  ): Promise<StormSocket> {
    return new StormSocket(await RawSocket.connect(host, port, path, timeoutMs, localAddress));
  }

  /** Called once, when the connection ends (either side). */
  get onclose(): (() => void) | null {
    return this.ws.onclose;
  }
  set onclose(fn: (() => void) | null) {
    this.ws.onclose = fn;
  }

  get closed(): boolean {
    return this.ws.closed;
  }

  /** Hands over each frame decoded, first those that came before (with the 101 answer). */
  listen(fn: (text: string) => void): void {
    this.ws.onmessage = (buf, start, end) => fn(buf.toString("utf8", start, end));
  }

  /** Sends one text frame. */
  send(text: string): void {
    this.ws.send(text);
  }

  /** Stops reading its socket (a slow reader). */
  pauseReading(): void {
    this.ws.pauseReading();
  }

  /** Sends a close frame and ends the connection. */
  close(): void {
    this.ws.close();
  }
}
