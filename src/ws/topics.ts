// Bun topic names. A topic per room per format, per user per format, and one per format for
// broadcasts: every frame is serialised once per format and fanned out by Bun, not by JS loops.
import type { Format } from "../protocol.ts";

const F: Record<Format, string> = { json: "j", text: "t" };

export const roomTopic = (format: Format, room: string) => `r:${F[format]}:${room}`;
export const userTopic = (format: Format, userId: string) => `u:${F[format]}:${userId}`;
export const allTopic = (format: Format) => `a:${F[format]}`;
