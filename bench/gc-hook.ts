// Preloaded (`bun --preload`) into both servers under test by the harness, never by Kabar itself:
// on SIGUSR2 the process runs a full, synchronous garbage collection and then writes how many it
// has run to <BENCH_GC_DIR>/gc-<pid>, which the harness waits for. Memory is read after one, so
// that RSS counts what the server keeps per socket rather than garbage a timer has not yet
// collected (left alone, Kabar's and the baseline's RSS drop by 2–3 MiB at a random moment
// 0.5–3 s after a burst of connections, which made RSS per connection swing by ±20%).
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.BENCH_GC_DIR;
if (dir) {
  let count = 0;
  process.on("SIGUSR2", () => {
    Bun.gc(true);
    count++;
    writeFileSync(join(dir, `gc-${process.pid}`), String(count));
  });
}
