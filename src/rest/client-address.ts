// The client's address, for the login throttle, the connection-rate limit and the logs. By
// default it is the TCP peer. Behind a reverse proxy (nginx) every peer is the proxy, so
// FORWARDED_ALLOW_IPS (uvicorn's name, the seed's server) lists the proxies whose
// `X-Forwarded-For` is believed: the client is then the right-most address in that header that
// is not itself a trusted proxy. A header from any other peer is ignored (it could be forged).
import type { Server } from "bun";

/** One trusted proxy: an exact address, or an IPv4 network in CIDR form. */
type Rule =
  | { kind: "any" }
  | { kind: "exact"; address: string }
  | { kind: "v4net"; base: number; mask: number };

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function v4(address: string): number | undefined {
  const m = V4.exec(address);
  if (m === null) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    if (part > 255) return undefined;
    n = n * 256 + part;
  }
  return n;
}

/** `::ffff:1.2.3.4` is 1.2.3.4; IPv6 in lower case. */
function normal(address: string): string {
  const a = address.trim().toLowerCase();
  return a.startsWith("::ffff:") && V4.test(a.slice(7)) ? a.slice(7) : a;
}

const isIp = (a: string): boolean =>
  v4(a) !== undefined || (a.includes(":") && /^[0-9a-f:.]+$/.test(a));

/** Parses FORWARDED_ALLOW_IPS entries; throws an Error naming a bad entry. */
export function parseTrusted(entries: readonly string[]): Rule[] {
  return entries.map((raw) => {
    const entry = normal(raw);
    if (entry === "*") return { kind: "any" };
    const slash = entry.indexOf("/");
    if (slash >= 0) {
      const base = v4(entry.slice(0, slash));
      const bits = Number(entry.slice(slash + 1));
      if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32)
        throw new Error(`not an IPv4 network (a.b.c.d/n): ${raw}`);
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      return { kind: "v4net", base: (base & mask) >>> 0, mask };
    }
    if (!isIp(entry)) throw new Error(`not an IP address: ${raw}`);
    return { kind: "exact", address: entry };
  });
}

export class ClientAddress {
  private readonly rules: Rule[];

  constructor(trusted: readonly string[]) {
    this.rules = parseTrusted(trusted);
  }

  get trustsProxies(): boolean {
    return this.rules.length > 0;
  }

  private trusted(address: string): boolean {
    for (const r of this.rules) {
      if (r.kind === "any") return true;
      if (r.kind === "exact" && r.address === address) return true;
      if (r.kind === "v4net") {
        const n = v4(address);
        if (n !== undefined && (n & r.mask) >>> 0 === r.base) return true;
      }
    }
    return false;
  }

  /** The client's address for `request`, "unknown" when Bun cannot tell. */
  of(request: Request, server: Server<unknown> | null | undefined): string {
    const peer = server?.requestIP(request)?.address;
    if (peer === undefined) return "unknown";
    const address = normal(peer);
    if (this.rules.length === 0 || !this.trusted(address)) return address;
    const forwarded = request.headers.get("x-forwarded-for");
    if (forwarded === null) return address;
    const hops = forwarded.split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normal(hops[i] as string);
      if (!isIp(hop)) return address; // a garbled header: the proxy itself
      if (!this.trusted(hop)) return hop;
    }
    // Every hop is a trusted proxy: the left-most one is as far as anyone can tell.
    return normal(hops[0] as string);
  }
}
