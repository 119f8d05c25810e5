// A bundler macro: `bundle("./browser/chat.ts")` is replaced, when src/web/pages.ts is loaded
// (`bun src/main.ts`) or built (`bun build --compile`), by the minified browser JavaScript of that
// entry point as a string literal. So the pages are built from TypeScript at build time and
// end up inside the binary, with no build step of their own and nothing fetched at run time.
// (Bun.build cannot run inside a macro during bundling: the CLI is spawned instead.)

/** The minified ES module bundle of `entry` (relative to this file), for browsers. */
export function bundle(entry: string): string {
  const path = new URL(entry, import.meta.url).pathname;
  const out = Bun.spawnSync(
    [process.execPath, "build", path, "--target=browser", "--format=esm", "--minify"],
    { env: { ...process.env, BUN_BE_BUN: "1" }, stdout: "pipe", stderr: "pipe" },
  );
  if (out.exitCode !== 0) throw new Error(`bundling ${entry} failed: ${out.stderr.toString()}`);
  return out.stdout.toString();
}
