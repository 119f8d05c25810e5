// The command registry: `type` → handler. A new command is one schema plus one entry here
// (or `handlers.set(...)` on the map passed to `createKabar`), as in the seed's `handlers` dict.
import { botReply } from "../bot.ts";
import { Commands, errors, events, HISTORY_LIMIT_DEFAULT } from "../protocol.ts";
import { type Handlers, handler } from "./handler.ts";
import { roomSummary } from "./hub.ts";

const LIMIT_TEXT = { max_rooms: "Total rooms", max_rooms_per_user: "Rooms per user" } as const;

export function defaultHandlers(): Handlers {
  return new Map([
    [
      "create_room",
      handler(Commands.create_room, async (conn, { room_name }) => {
        const created = await conn.hub.registry.create(room_name, conn.userId, Date.now());
        if (created.ok) conn.send(events.roomCreated(room_name));
        else if (created.error === "room_exists") conn.send(errors.roomExists(room_name));
        else conn.send(errors.limitReached(LIMIT_TEXT[created.error]));
      }),
    ],
    [
      "join_room",
      handler(Commands.join_room, async (conn, { room_name, since, presence }) => {
        if (conn.room === room_name) return conn.send(errors.alreadyInRoom(room_name));
        const room = await conn.hub.registry.join(room_name, conn.key, Date.now());
        if (!room) return conn.send(errors.roomNotFound(room_name));
        const previous = conn.room;
        if (previous !== null) await conn.hub.leaveRoom(conn);
        await conn.hub.enterRoom(conn, room, { since, presence }, (e) =>
          conn.batch(() => {
            if (previous !== null) conn.send(events.roomLeft(previous));
            conn.send(events.roomJoined(room_name, room.members, e.position, e.recovered));
            conn.send(events.roomUpdate(room_name));
            for (const m of e.replay) conn.hub.fanout.toSocket(conn, m);
          }),
        );
      }),
    ],
    [
      "leave_room",
      handler(Commands.leave_room, async (conn) => {
        const room = conn.room;
        if (room === null) return conn.send(errors.notInRoom());
        await conn.hub.leaveRoom(conn);
        conn.batch(() => {
          conn.send(events.roomLeft(room));
          conn.send(events.roomUpdate(null));
        });
      }),
    ],
    [
      "close_room",
      handler(Commands.close_room, async (conn, cmd) => {
        const name = cmd.room_name ?? conn.room;
        if (name === null) return conn.send(errors.notInRoom());
        const closed = await conn.hub.registry.close(name, conn.userId);
        if (!closed.ok) {
          if (closed.error === "room_not_found") return conn.send(errors.roomNotFound(name));
          return conn.send(errors.notRoomCreator(name));
        }
        conn.batch(() => conn.hub.roomClosed(name, conn.userId, conn));
      }),
    ],
    [
      "list_rooms",
      handler(Commands.list_rooms, async (conn) => {
        const rooms = await conn.hub.registry.list();
        conn.send(events.rooms(rooms.map(roomSummary)));
      }),
    ],
    [
      "message",
      handler(Commands.message, (conn, { content }) => {
        const room = conn.room;
        if (room === null) return conn.send(errors.notInRoomToSend());
        const reply = conn.hub.config.botEnabled ? botReply(content) : undefined;
        conn.hub.sendToRoom(
          conn,
          room,
          content,
          reply === undefined ? undefined : events.bot(reply),
        );
      }),
    ],
    [
      "direct",
      handler(Commands.direct, (conn, { user_id, content }) => {
        const sent = conn.hub.sendDirect(conn, user_id.toLowerCase(), content);
        if (sent === false) return conn.send(errors.userOffline(user_id));
        if (sent !== true)
          return sent.then((ok) => {
            if (!ok) conn.send(errors.userOffline(user_id));
          });
      }),
    ],
    [
      "broadcast",
      handler(Commands.broadcast, async (conn, { content }) => {
        const user = await conn.hub.users.getById(conn.userId);
        if (!user?.is_superuser) return conn.send(errors.forbidden());
        conn.hub.broadcast(conn.userId, content);
      }),
    ],
    [
      "history",
      handler(Commands.history, async (conn, { room_name, before, limit }) => {
        const name = room_name ?? conn.room;
        if (name === null) return conn.send(errors.notInRoom());
        if (!(await conn.hub.registry.get(name))) return conn.send(errors.roomNotFound(name));
        const page = await conn.hub.history.page(
          name,
          before,
          limit ?? HISTORY_LIMIT_DEFAULT,
          Date.now(),
        );
        conn.send(events.history(name, page.top.epoch, page.messages));
      }),
    ],
    [
      "presence",
      handler(Commands.presence, async (conn, { room_name }) => {
        const name = room_name ?? conn.room;
        if (name === null) return conn.send(errors.notInRoom());
        if (!(await conn.hub.registry.get(name))) return conn.send(errors.roomNotFound(name));
        conn.send(events.presence(name, await conn.hub.presence.list(name)));
      }),
    ],
    [
      "typing",
      handler(Commands.typing, (conn) => {
        const room = conn.room;
        if (room === null) return conn.send(errors.notInRoom());
        conn.hub.typing(conn, room);
      }),
    ],
  ]);
}
