// The seed's testing bot: replies to the sender of a room message, first matching rule wins.

const LOREM = [
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
  "Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.",
  "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore.",
  "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia.",
  "Curabitur pretium tincidunt lacus, nulla gravida orci a odio.",
];

export const LOREM_SENTENCES: readonly string[] = LOREM;

export function botReply(content: string, random: () => number = Math.random): string | undefined {
  const text = content.trim().toLowerCase();
  if (text === "halo") return "apa kabar";
  if (text.includes("nama")) return "nama saya abdu";
  if (/[aiueo]/.test(text)) return LOREM[Math.floor(random() * LOREM.length)];
  return undefined;
}
