// DOM helpers for the pages. Text goes in only as text nodes (textContent / createTextNode):
// nothing a user typed is ever parsed as HTML.

type Child = Node | string | null | undefined | false;

/** `<tag>` with attributes (strings, set with setAttribute) and children (strings become text). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

/** The element with `data-testid="id"`; throws when the page lacks it (a bug, not user input). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.querySelector<T>(`[data-testid="${id}"]`);
  if (!node) throw new Error(`missing element ${id}`);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id) as T | null;
  if (!node) throw new Error(`missing element #${id}`);
  return node;
}

/** Sets text, replacing whatever was there. */
export function setText(node: Element, text: string): void {
  node.textContent = text;
}

/** `12:34` in the viewer's time zone, from an ISO time. */
export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? ""
    : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The text of an event without the seed's `[System] ` prefix. */
export const plain = (text: string): string => text.replace(/^\[System\] /, "");

let noticeTimer: ReturnType<typeof setTimeout> | undefined;

/** Shows a short message in words at the top of the page (errors, rate limits, broadcasts). */
export function notice(text: string, ms = 6000): void {
  const node = byTestId("notice");
  setText(node, text);
  node.hidden = false;
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    node.hidden = true;
  }, ms);
}
