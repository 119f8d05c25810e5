// heard.ts: what a cluster node has heard of each room, and whether a join's read is ahead of it.
import { expect, test } from "bun:test";
import { Heard } from "../src/ws/heard.ts";

test("a room with no message yet is covered; otherwise only up to the latest seq heard, same epoch", () => {
  const h = new Heard();
  expect(h.covers("r", { epoch: "e1", seq: 0 })).toBe(true);
  expect(h.covers("r", { epoch: "e1", seq: 1 })).toBe(false);
  h.message("r", "e1", 1);
  h.message("r", "e1", 2);
  expect(h.covers("r", { epoch: "e1", seq: 2 })).toBe(true);
  expect(h.covers("r", { epoch: "e1", seq: 1 })).toBe(true);
  expect(h.covers("r", { epoch: "e1", seq: 3 })).toBe(false);
  // Another epoch (the history was lost): nothing heard of it yet.
  expect(h.covers("r", { epoch: "e2", seq: 1 })).toBe(false);
  h.message("r", "e2", 1);
  expect(h.covers("r", { epoch: "e2", seq: 1 })).toBe(true);
  expect(h.covers("r", { epoch: "e1", seq: 2 })).toBe(false);
  expect(h.covers("other", { epoch: "e2", seq: 1 })).toBe(false);
});

test("messages without seq are not counted; forget drops the room", () => {
  const h = new Heard();
  h.message("r", undefined, 5);
  h.message("r", "e", undefined);
  expect(h.size).toBe(0);
  h.message("r", "e", 5);
  expect(h.size).toBe(1);
  h.forget("r");
  expect(h.size).toBe(0);
  expect(h.covers("r", { epoch: "e", seq: 5 })).toBe(false);
});
