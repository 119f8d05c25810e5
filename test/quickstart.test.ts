// The seed's Quick Start, line by line, in text format: a seed-era client works unchanged.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";

let srv: TestServer;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  alice = await createUser(srv);
  bob = await createUser(srv);
});
afterAll(() => srv.stop());

test("Quick Start sequence in text format", async () => {
  const ws = await Client.open(`${srv.ws}?token=${alice.token}&format=text`);
  expect(await ws.next()).toMatch(new RegExp(`^\\[System\\] Welcome, ${alice.id}! `));
  const other = await Client.open(`${srv.ws}?token=${bob.token}&format=text`);
  await other.next();

  expect(await ws.ask({ type: "create_room", room_name: "general-chat" })).toBe(
    "[System] Room 'general-chat' created successfully!",
  );
  ws.send({ type: "join_room", room_name: "general-chat" });
  expect(await ws.take(2)).toEqual([
    "[System] Joined room 'general-chat' successfully!",
    "ROOM_UPDATE:general-chat",
  ]);
  other.send({ type: "join_room", room_name: "general-chat" });
  await other.take(2);

  expect(await ws.ask({ type: "message", content: "Hello everyone!" })).toBe(
    "You wrote: Hello everyone!",
  );
  expect(await other.next()).toBe(`User ${alice.id} says: Hello everyone!`);

  const list = await ws.ask({ type: "list_rooms" });
  const lines = list.split("\n");
  expect(lines[0]).toBe("[System] Active Rooms:");
  expect(lines[1]).toMatch(
    new RegExp(
      `^  - general-chat \\(Creator: ${alice.id}, Members: 2, Created: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\)$`,
    ),
  );

  ws.send({ type: "leave_room" });
  expect(await ws.take(2)).toEqual([
    "[System] Left room 'general-chat' successfully!",
    "ROOM_UPDATE:None",
  ]);
  ws.send({ type: "join_room", room_name: "general-chat" });
  await ws.take(2);
  ws.send({ type: "close_room" });
  expect(await ws.take(2)).toEqual([
    "[System] Room 'general-chat' closed successfully!",
    "ROOM_UPDATE:None",
  ]);
  expect(await other.take(2)).toEqual([
    "[System] Room 'general-chat' was closed by its creator.",
    "ROOM_UPDATE:None",
  ]);
  expect(await ws.ask({ type: "list_rooms" })).toBe("[System] No active rooms.");
  ws.close();
  other.close();
});
