// Bun topic names: one per room per format and one per format for broadcasts, so every frame is
// serialised once per format and fanned out by Bun, not by JS loops. (Direct messages need no
// topic: the hub lists each user's own sockets.)
import type { Format } from "../protocol.ts";

const F: Record<Format, string> = { json: "j", text: "t" };

export const roomTopic = (format: Format, room: string) => `r:${F[format]}:${room}`;
export const allTopic = (format: Format) => `a:${F[format]}`;
/** Per room per format: the sockets that joined with `presence: true` (presence events, typing). */
export const presenceTopic = (format: Format, room: string) => `p:${F[format]}:${room}`;
