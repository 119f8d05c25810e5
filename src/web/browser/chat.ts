// The web chat at `/`: rooms, messages, direct messages, presence and typing over one
// KabarClient (src/client), which reconnects with backoff and re-joins the room with `since`.
import { type ConnectionState, type EventOf, KabarClient } from "../../client/client.ts";
import type { PublicUser } from "../../client/rest.ts";
import { byId, byTestId, clock, el, notice, plain, setText } from "./dom.ts";
import { nameOf, nameText, rememberName } from "./names.ts";
import { api, forgetToken, session } from "./session.ts";

type MessageEvent = EventOf<"message">;

const roomList = byTestId<HTMLUListElement>("room-list");
const messages = byTestId<HTMLOListElement>("message-list");
const input = byTestId<HTMLTextAreaElement>("message-input");
const status = byTestId("connection-status");
const members = byTestId("room-members");
const typingLine = byTestId("typing");
const leaveBtn = byTestId<HTMLButtonElement>("leave-room");
const closeBtn = byTestId<HTMLButtonElement>("close-room");
const dmTarget = byTestId("direct-target");

let client: KabarClient | undefined;
let me: PublicUser | undefined;
let room: string | null = null;
/** Room name → creator id, from the last room list. */
let creators = new Map<string, string>();
/** Message ids shown in the current room: a replay never shows one twice. */
let seen = new Set<string>();
/** Users online in the current room. */
const online = new Set<string>();
/** The user a direct message goes to, when set. */
let directTo: string | undefined;
let roomsTimer: ReturnType<typeof setInterval> | undefined;
let lastTyping = 0;
const typers = new Map<string, ReturnType<typeof setTimeout>>();

function send(cmd: Parameters<KabarClient["send"]>[0]): void {
  if (!client?.send(cmd)) notice("Not connected: wait for the connection to come back.");
}

// ------------------------------------------------------------------ connection state

function closedWords(code: number, reason: string): string {
  if (reason === "User deactivated") return "Your account was deactivated by an administrator.";
  if (reason === "User deleted") return "Your account was deleted.";
  if (reason === "Authentication failed") return "Your session is no longer valid: log in again.";
  if (reason === "Too many connections")
    return "Too many open connections for your account: close another tab and reload.";
  if (code === 1000) return "Disconnected.";
  return `Disconnected (${reason || `code ${code}`}).`;
}

function showState(s: ConnectionState): void {
  status.dataset.state = s.state;
  switch (s.state) {
    case "connecting":
      setText(status, s.attempt === 0 ? "Connecting…" : `Reconnecting (attempt ${s.attempt})…`);
      break;
    case "open":
      setText(status, "Connected");
      break;
    case "waiting":
      setText(status, `Connection lost: retrying in ${Math.ceil(s.delayMs / 1000)} s`);
      break;
    case "closed":
      setText(status, closedWords(s.code, s.reason));
      if (client) {
        // Closed for good: nothing on the page can reach the server any more.
        leftRoom();
        byId("chat").inert = true;
      }
      if (s.code !== 1000) notice(closedWords(s.code, s.reason), 60_000);
      if (s.reason === "Authentication failed") forgetToken();
      break;
  }
}

// ------------------------------------------------------------------ rooms

function renderRooms(list: EventOf<"rooms">["rooms"]): void {
  creators = new Map(list.map((r) => [r.name, r.creator]));
  roomList.replaceChildren(
    ...list.map((r) => {
      const button = el(
        "button",
        { type: "button", title: `Join ${r.name}` },
        el("span", {}, r.name),
        el("span", { class: "count" }, `${r.members} online · by `, nameOf(r.creator)),
      );
      button.addEventListener("click", () => {
        if (r.name !== room) send({ type: "join_room", room_name: r.name, presence: true });
      });
      return el(
        "li",
        {
          "data-testid": "room-item",
          "data-room": r.name,
          "aria-current": String(r.name === room),
        },
        button,
      );
    }),
  );
  if (list.length === 0) roomList.append(el("li", { class: "count" }, "No rooms yet: create one."));
  updateRoomControls();
}

let refreshing: ReturnType<typeof setTimeout> | undefined;
/** Reloads the room list over REST (`GET /ws/stats`): it costs no rate-limit token. */
function refreshRooms(): void {
  if (refreshing) return;
  refreshing = setTimeout(() => {
    refreshing = undefined;
    if (!client) return;
    api.stats().then(
      (s) => renderRooms(s.rooms),
      () => {},
    );
  }, 100);
}

function updateRoomControls(): void {
  setText(byTestId("current-room"), room === null ? "Not in a room" : `# ${room}`);
  leaveBtn.disabled = room === null;
  closeBtn.disabled = room === null || creators.get(room) !== me?.id;
  for (const li of roomList.querySelectorAll<HTMLElement>("[data-testid=room-item]"))
    li.setAttribute("aria-current", String(li.dataset.room === room));
}

function renderMembers(): void {
  const people = [...online].filter((id) => id !== me?.id);
  if (room === null) {
    members.replaceChildren();
    return;
  }
  members.replaceChildren(
    people.length === 0 ? "Only you are here." : "Here: ",
    ...people.map((id) => {
      const dm = el("button", { type: "button", class: "plain", title: "Send a direct message" });
      dm.append(nameOf(id), " ✉");
      dm.addEventListener("click", () => setDirect(id));
      return dm;
    }),
  );
}

function setDirect(id: string | undefined): void {
  directTo = id;
  dmTarget.hidden = id === undefined;
  if (id === undefined) {
    dmTarget.replaceChildren();
    return;
  }
  const cancel = el("button", { type: "button", class: "plain", title: "Back to the room" }, "×");
  cancel.addEventListener("click", () => setDirect(undefined));
  dmTarget.replaceChildren("To ", nameOf(id), cancel);
  input.focus();
}

function enterRoom(e: EventOf<"room_joined">): void {
  const same = e.room === room;
  room = e.room;
  online.clear();
  if (!(same && e.recovered)) {
    // A fresh join (or a recovery that could not be made): start over from the room's history.
    seen = new Set();
    messages.replaceChildren();
    if (e.seq > 0) send({ type: "history", limit: 50 });
  }
  send({ type: "presence" });
  updateRoomControls();
  refreshRooms();
}

function leftRoom(): void {
  room = null;
  online.clear();
  renderMembers();
  updateRoomControls();
}

// ------------------------------------------------------------------ messages

function line(kind: string, sender: Node | null, text: string, at?: string, extra?: Node): void {
  const meta = el("span", { class: "meta" });
  if (sender) meta.append(sender);
  if (extra) meta.append(extra);
  if (at) meta.append(el("time", { datetime: at }, clock(at)));
  const stick = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 20;
  messages.append(el("li", { "data-testid": "message-item", class: kind }, meta, text));
  if (stick) messages.scrollTop = messages.scrollHeight;
}

function showMessage(m: MessageEvent | EventOf<"history">["messages"][number]): void {
  if (m.room !== room || seen.has(m.id)) return;
  seen.add(m.id);
  line(m.from === me?.id ? "mine" : "", nameOf(m.from), m.content, m.sent_at);
  clearTyping(m.from);
}

const system = (text: string) => line("system", null, text);

function clearTyping(id: string): void {
  const t = typers.get(id);
  if (t) clearTimeout(t);
  typers.delete(id);
  renderTyping();
}

function renderTyping(): void {
  const ids = [...typers.keys()];
  setText(
    typingLine,
    ids.length === 0
      ? ""
      : `${ids.map(nameText).join(", ")} ${ids.length === 1 ? "is" : "are"} typing…`,
  );
}

// ------------------------------------------------------------------ events

function wire(c: KabarClient): void {
  c.onState(showState);
  c.on("welcome", () => refreshRooms());
  c.on("room_update", () => refreshRooms());
  c.on("rooms", (e) => renderRooms(e.rooms));
  c.on("room_created", (e) => {
    notice(plain(e.text), 3000);
    send({ type: "join_room", room_name: e.room, presence: true });
  });
  c.on("room_joined", enterRoom);
  c.on("room_left", (e) => {
    system(plain(e.text));
    refreshRooms();
  });
  c.on("room_closed", (e) => {
    const mine = e.by === me?.id;
    const text = mine
      ? `You closed room '${e.room}'.`
      : `Room '${e.room}' was closed by its creator.`;
    system(text);
    notice(text);
    refreshRooms();
  });
  c.on("room_update", (e) => {
    if (e.room === null) leftRoom();
  });
  c.on("message", showMessage);
  c.on("history", (e) => {
    if (e.room !== room) return;
    for (const m of e.messages) showMessage(m);
  });
  c.on("direct", (e) => {
    const mine = e.from === me?.id;
    const who = el("span", {}, mine ? "You → " : "Private from ", nameOf(mine ? e.to : e.from));
    line("direct", who, e.content, e.sent_at);
    if (!mine) notice(`Private message from ${nameText(e.from)}`, 3000);
  });
  c.on("broadcast", (e) => {
    line("system", el("strong", {}, "Announcement"), e.content, e.sent_at);
    notice(`Announcement: ${e.content}`);
  });
  c.on("bot", (e) => line("system", el("strong", {}, "Bot"), e.content));
  c.on("error", (e) => {
    if (e.code === "rate_limited") {
      const secs = /in (\d+)s/.exec(e.text)?.[1] ?? "a few";
      notice(`Slow down: too many messages. Try again in ${secs} seconds.`);
    } else notice(plain(e.text));
    if (e.code === "room_not_found") {
      // The room we were re-joining after a reconnect is gone (closed, or the server restarted).
      if (room !== null && c.room === null) {
        system(`Room '${room}' no longer exists.`);
        leftRoom();
      }
      refreshRooms();
    }
  });
  c.on("presence", (e) => {
    if (e.room !== room) return;
    online.clear();
    for (const u of e.users) online.add(u.user_id);
    renderMembers();
  });
  c.on("presence_join", (e) => {
    if (e.room !== room) return;
    online.add(e.user_id);
    renderMembers();
    refreshRooms();
  });
  c.on("presence_leave", (e) => {
    if (e.room !== room) return;
    online.delete(e.user_id);
    clearTyping(e.user_id);
    renderMembers();
    refreshRooms();
  });
  c.on("typing", (e) => {
    if (e.room !== room || e.user_id === me?.id) return;
    clearTyping(e.user_id);
    typers.set(
      e.user_id,
      setTimeout(() => clearTyping(e.user_id), 4000),
    );
    renderTyping();
  });
}

// ------------------------------------------------------------------ controls

byId<HTMLFormElement>("create-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const field = byTestId<HTMLInputElement>("room-name");
  const name = field.value.trim();
  if (!/^[a-zA-Z0-9_-]{1,100}$/.test(name))
    return notice("A room name is 1-100 letters, digits, '_' or '-'.");
  send({ type: "create_room", room_name: name });
  field.value = "";
});

leaveBtn.addEventListener("click", () => send({ type: "leave_room" }));
closeBtn.addEventListener("click", () => {
  if (room !== null) send({ type: "close_room", room_name: room });
});

function submitMessage(): void {
  const content = input.value.trim();
  if (content === "") return;
  if (directTo !== undefined) send({ type: "direct", user_id: directTo, content });
  else if (room === null) {
    notice("Join or create a room first (or pick someone to message).");
    return;
  } else send({ type: "message", content });
  input.value = "";
  lastTyping = 0;
}

byId<HTMLFormElement>("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submitMessage();
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submitMessage();
  } else if (e.key === "Escape") setDirect(undefined);
});
input.addEventListener("input", () => {
  // At most one typing frame every 3 s: each costs a rate-limit token.
  const now = Date.now();
  if (room === null || directTo !== undefined || now - lastTyping < 3000) return;
  lastTyping = now;
  client?.send({ type: "typing" });
});

// ------------------------------------------------------------------ start

const wsUrl = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;

session(
  (user) => {
    me = user;
    rememberName(user.id, user.full_name?.trim() || user.id.slice(0, 8));
    const links = byId("links");
    links.replaceChildren();
    if (user.is_superuser) links.append(el("a", { href: "/admin" }, "Admin"));
    byId("chat").hidden = false;
    byId("chat").inert = false;
    client = new KabarClient({ url: wsUrl(), token: () => api.token ?? "", presence: true });
    wire(client);
    client.start();
    roomsTimer = setInterval(refreshRooms, 3000);
    input.focus();
  },
  () => {
    const closing = client;
    client = undefined;
    closing?.close();
    if (roomsTimer) clearInterval(roomsTimer);
    byId("chat").hidden = true;
    leftRoom();
    messages.replaceChildren();
    status.dataset.state = "idle";
    setText(status, "Not connected");
  },
);
