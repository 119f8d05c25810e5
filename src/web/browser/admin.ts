// The admin page at `/admin` (superusers): live connections and rooms (cluster-wide), messages
// per second from `/metrics` as an inline SVG chart, users (create, deactivate, reactivate) and
// a broadcast box. Everything comes from the REST API the page's user is allowed to call.
import { ApiError, type PublicUser, type WsStats } from "../../client/rest.ts";
import { byId, byTestId, clock, el, notice, setText } from "./dom.ts";
import { messageFrames } from "./metrics.ts";
import { nameOf } from "./names.ts";
import { api, session } from "./session.ts";

const POLL_MS = 2000;
const WINDOW_MS = 5 * 60_000;
const SVG = "http://www.w3.org/2000/svg";

let timers: Array<ReturnType<typeof setInterval>> = [];
/** The logged-in superuser: the page does not offer to lock them out. */
let myId: string | undefined;

const words = (e: unknown) => (e instanceof ApiError ? e.detail : "Request failed");

// ------------------------------------------------------------------ live stats

function renderStats(s: WsStats): void {
  setText(byTestId("admin-connections"), String(s.total_connections));
  setText(byTestId("admin-rooms-count"), String(s.total_rooms));
  setText(
    byTestId("admin-nodes"),
    s.nodes.length <= 1
      ? "one node"
      : `${s.nodes.length} nodes (${s.nodes.map((n) => `${n.id.slice(0, 8)}: ${n.connections}`).join(", ")})`,
  );
  byTestId("admin-rooms").replaceChildren(
    ...s.rooms.map((r) =>
      el(
        "tr",
        { "data-testid": "admin-room", "data-room": r.name },
        el("td", {}, r.name),
        el("td", {}, nameOf(r.creator)),
        el("td", {}, String(r.members)),
        el("td", {}, clock(r.created_at)),
      ),
    ),
  );
}

async function pollStats(): Promise<void> {
  try {
    renderStats(await api.stats());
  } catch (e) {
    notice(`Live stats: ${words(e)}`, 3000);
  }
}

// ------------------------------------------------------------------ messages per second

/** (time, counter) samples of `kabar_frames_in_total{type="message"}`. */
const samples: Array<{ t: number; v: number }> = [];

async function pollMetrics(): Promise<void> {
  let value: number | undefined;
  try {
    const res = await fetch("/metrics", {
      headers: api.token ? { authorization: `Bearer ${api.token}` } : {},
    });
    if (res.ok) value = messageFrames(await res.text());
  } catch {
    value = undefined;
  }
  const now = Date.now();
  if (value !== undefined) samples.push({ t: now, v: value });
  while (samples.length > 0 && (samples[0]?.t ?? now) < now - WINDOW_MS) samples.shift();
  drawChart(now);
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string>,
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(now: number): void {
  const figure = byTestId("rate-chart");
  const rates: Array<{ t: number; r: number }> = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (!a || !b || b.t <= a.t) continue;
    // A counter that went down means the server restarted: no rate for that step.
    if (b.v >= a.v) rates.push({ t: b.t, r: ((b.v - a.v) * 1000) / (b.t - a.t) });
  }
  const W = 600;
  const H = 180;
  const max = Math.max(1, ...rates.map((p) => p.r));
  const x = (t: number) => (W * (t - (now - WINDOW_MS))) / WINDOW_MS;
  const y = (r: number) => H - 20 - ((H - 30) * r) / max;
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": "Messages per second over the last 5 minutes",
  });
  chart.append(
    svg("line", { class: "axis", x1: "0", y1: String(H - 20), x2: String(W), y2: String(H - 20) }),
    svg("text", { x: "4", y: "12" }, `${max.toFixed(max < 10 ? 1 : 0)}/s`),
    svg("text", { x: "4", y: String(H - 6) }, "5 min ago"),
    svg("text", { x: String(W - 30), y: String(H - 6) }, "now"),
  );
  if (rates.length > 0)
    chart.append(
      svg("polyline", {
        points: rates.map((p) => `${x(p.t).toFixed(1)},${y(p.r).toFixed(1)}`).join(" "),
      }),
    );
  const last = rates[rates.length - 1];
  const caption = el(
    "figcaption",
    { "data-testid": "rate-now" },
    last
      ? `${last.r.toFixed(1)} messages/s now`
      : samples.length === 0
        ? "no data (the server does not publish /metrics)"
        : "collecting…",
  );
  figure.replaceChildren(chart, caption);
}

// ------------------------------------------------------------------ users

function userRow(u: PublicUser): HTMLTableRowElement {
  const toggle = el(
    "button",
    { type: "button", "data-testid": "user-toggle", class: u.is_active ? "plain" : "" },
    u.is_active ? "Deactivate" : "Reactivate",
  );
  if (u.id === myId) {
    toggle.disabled = true;
    toggle.title = "You cannot deactivate yourself here";
  }
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      await api.setActive(u.id, !u.is_active);
      notice(`${u.email} ${u.is_active ? "deactivated" : "reactivated"}`, 3000);
    } catch (e) {
      notice(words(e));
    }
    await loadUsers();
  });
  return el(
    "tr",
    { "data-testid": "user-row", "data-email": u.email, "data-active": String(u.is_active) },
    el("td", {}, u.email),
    el("td", {}, u.full_name ?? ""),
    el("td", {}, u.is_superuser ? "superuser" : "user"),
    el("td", {}, u.is_active ? "active" : "inactive"),
    el("td", {}, toggle),
  );
}

async function loadUsers(): Promise<void> {
  try {
    const { data } = await api.users();
    byTestId("user-list").replaceChildren(...data.map(userRow));
  } catch (e) {
    notice(`Users: ${words(e)}`);
  }
}

byId<HTMLFormElement>("user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = (id: string) => byTestId<HTMLInputElement>(id).value.trim();
  try {
    const u = await api.createUser({
      email: value("user-email"),
      password: byTestId<HTMLInputElement>("user-password").value,
      full_name: value("user-name") || null,
      is_superuser: byTestId<HTMLInputElement>("user-superuser").checked,
    });
    notice(`User ${u.email} created`, 3000);
    byId<HTMLFormElement>("user-form").reset();
    await loadUsers();
  } catch (x) {
    notice(`Could not create the user: ${words(x)}`);
  }
});

// ------------------------------------------------------------------ broadcast

byId<HTMLFormElement>("broadcast-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const field = byTestId<HTMLInputElement>("broadcast-input");
  const result = byTestId("broadcast-result");
  try {
    const out = await api.broadcast(field.value);
    setText(result, `Sent to ${out.recipients} connections.`);
    field.value = "";
  } catch (x) {
    setText(result, `Not sent: ${words(x)}`);
  }
});

// ------------------------------------------------------------------ start

const status = byTestId("connection-status");

session(
  (me) => {
    if (!me.is_superuser) {
      status.dataset.state = "closed";
      setText(status, "This page is for superusers");
      notice("This page is for superusers. The chat is at /.", 60_000);
      return;
    }
    myId = me.id;
    byId("links").replaceChildren(el("a", { href: "/" }, "Chat"));
    byId("admin").hidden = false;
    status.dataset.state = "open";
    setText(status, "Live");
    drawChart(Date.now());
    void pollStats();
    void pollMetrics();
    void loadUsers();
    timers = [
      setInterval(pollStats, POLL_MS),
      setInterval(pollMetrics, POLL_MS),
      setInterval(loadUsers, 10_000),
    ];
  },
  () => {
    for (const t of timers) clearInterval(t);
    timers = [];
    byId("admin").hidden = true;
    status.dataset.state = "idle";
    setText(status, "Not connected");
  },
);
