// The child side of bench/line-agent.ts: reads one JSON command per stdin line, answers each with
// one JSON line `{id, ok, result | error}`, stops after the `exit` command (or the end of stdin),
// then lets the script close what it opened and exits.
export async function serveLines<C extends { id: number; op: string }>(
  run: (cmd: C) => Promise<unknown>,
  closeEverything: () => void,
  graceMs = 100,
): Promise<never> {
  for await (const line of console) {
    if (line.trim() === "") continue;
    const cmd = JSON.parse(line) as C;
    try {
      const result = await run(cmd);
      process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: true, result })}\n`);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: false, error })}\n`);
    }
    if (cmd.op === "exit") break;
  }
  closeEverything();
  await Bun.sleep(graceMs);
  process.exit(0);
}
