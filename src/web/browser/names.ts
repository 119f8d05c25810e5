// Display names instead of UUIDs: every element made by `nameOf` shows a short id at first and
// the user's name once `POST /users/names` answered (one batched request per tick).
import { api } from "./session.ts";

const known = new Map<string, string>();
const wanted = new Set<string>();
const shown = new Map<string, Set<HTMLElement>>();
let flushing: ReturnType<typeof setTimeout> | undefined;

export const shortId = (id: string): string => id.slice(0, 8);

export function nameText(id: string): string {
  return known.get(id) ?? shortId(id);
}

function flush(): void {
  flushing = undefined;
  const ids = [...wanted].slice(0, 200);
  for (const id of ids) wanted.delete(id);
  if (ids.length === 0) return;
  api.names(ids).then(
    (names) => {
      for (const id of ids) {
        const name = names[id] ?? shortId(id);
        known.set(id, name);
        for (const node of shown.get(id) ?? []) node.textContent = name;
        shown.delete(id);
      }
    },
    () => {
      // Short ids stay; a later element asks again.
    },
  );
  if (wanted.size > 0) flushing = setTimeout(flush, 0);
}

/** An element showing the user's name (filled in when known). */
export function nameOf(id: string, tag: "span" | "strong" = "span"): HTMLElement {
  const node = document.createElement(tag);
  node.className = "sender";
  node.dataset.userId = id;
  node.textContent = nameText(id);
  if (!known.has(id)) {
    let set = shown.get(id);
    if (!set) {
      set = new Set();
      shown.set(id, set);
    }
    set.add(node);
    wanted.add(id);
    if (!flushing) flushing = setTimeout(flush, 30);
  }
  return node;
}

/** Tells the cache a name the page already knows (the logged-in user). */
export function rememberName(id: string, name: string): void {
  known.set(id, name);
}
