// Static checks of the Dockerfile and .dockerignore (no Docker engine here), plus the parts that can
// run for real: the HEALTHCHECK route and the HEALTHCHECK command itself against a live server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadConfig } from "../src/config.ts";
import { startServer, type TestServer } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  image: string;
  name: string;
  body: Instruction[];
}

/** Dockerfile → instructions: comments dropped, `\` continuations joined. */
function parse(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    if (full === "") continue;
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
  }
  return out;
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`unreadable FROM ${ins.args}`);
      stages.push({ image: m[1] as string, name: m[2] ?? "", body: [] });
    } else {
      stages.at(-1)?.body.push(ins);
    }
  }
  return stages;
}

const dockerfile = await Bun.file(join(ROOT, "Dockerfile")).text();
const instructions = parse(dockerfile);
const stages = stagesOf(instructions);
const runtime = stages.at(-1) as Stage;
const pkg = (await Bun.file(join(ROOT, "package.json")).json()) as {
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};
const ops = (stage: Stage, op: string) => stage.body.filter((i) => i.op === op);
const stage = (name: string) => stages.find((s) => s.name === name);

/** The HEALTHCHECK's exec-form command. */
function healthcheckCommand(): string[] {
  const hc = ops(runtime, "HEALTHCHECK");
  expect(hc).toHaveLength(1);
  const args = (hc[0] as Instruction).args;
  const at = args.indexOf("CMD ");
  expect(at).toBeGreaterThanOrEqual(0);
  const cmd = JSON.parse(args.slice(at + 4)) as unknown;
  expect(Array.isArray(cmd)).toBe(true);
  return cmd as string[];
}

describe("stages", () => {
  test("multi-stage, every stage named, every image pinned (no :latest, no bare name)", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      expect(s.name, `FROM ${s.image} needs AS <name>`).not.toBe("");
      expect(s.image, `${s.image} has a tag or digest`).toMatch(/[:@]/);
      expect(s.image).not.toMatch(/:latest$/);
    }
    expect(new Set(stages.map((s) => s.name)).size).toBe(stages.length);
  });

  test("the compiler is the official Bun image at the version package.json pins", () => {
    const build = stage("build");
    expect(build?.image).toBe("oven/bun:1.4.4");
    expect(pkg.devDependencies.bun).toBe("1.4.4");
    expect(build?.image).toBe(`oven/bun:${pkg.devDependencies.bun}`);
  });

  test("dependencies come from package-lock.json via npm ci", () => {
    const deps = stages.find((s) => ops(s, "RUN").some((r) => /\bnpm ci\b/.test(r.args)));
    expect(deps).toBeDefined();
    const copied = ops(deps as Stage, "COPY").map((c) => c.args);
    expect(copied.some((c) => c.includes("package-lock.json"))).toBe(true);
    expect(existsSync(join(ROOT, "package-lock.json"))).toBe(true);
    expect(ops(deps as Stage, "RUN").some((r) => r.args.includes("--omit=dev"))).toBe(true);
  });

  test("the build stage compiles with package.json's build script, output dist/kabar", () => {
    const build = stage("build") as Stage;
    expect(ops(build, "RUN").some((r) => /\bbun run build\b/.test(r.args))).toBe(true);
    expect(pkg.scripts.build).toContain("--compile");
    expect(pkg.scripts.build).toContain("--outfile dist/kabar");
    expect(pkg.scripts.build).not.toMatch(/--minify(\s|$)/); // --minify breaks Elysia
  });

  test("the runtime stage is a slim glibc base holding only the binary", () => {
    expect(runtime.image).toMatch(/^(debian:[a-z0-9.]+-slim|gcr\.io\/distroless\/[a-z0-9-]+)$/);
    expect(runtime.image).not.toMatch(/alpine|musl/);
    const copies = ops(runtime, "COPY").concat(ops(runtime, "ADD"));
    expect(copies).toHaveLength(1);
    expect((copies[0] as Instruction).args).toBe(
      "--from=build /src/dist/kabar /usr/local/bin/kabar",
    );
    expect(ops(runtime, "ENTRYPOINT").map((e) => JSON.parse(e.args))).toEqual([
      ["/usr/local/bin/kabar"],
    ]);
    // No toolchain installed at runtime.
    for (const r of ops(runtime, "RUN")) expect(r.args).not.toMatch(/apt-get install|npm|bun /);
  });

  test("every COPY source from the build context exists and is not .dockerignore'd", async () => {
    const ignore = (await Bun.file(join(ROOT, ".dockerignore")).text())
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const p of ["node_modules", "dist", ".git", "data", "*.db", ".env"])
      expect(ignore).toContain(p);
    const sources = stages.flatMap((s) =>
      ops(s, "COPY")
        .filter((c) => !c.args.startsWith("--from="))
        .flatMap((c) => c.args.split(/\s+/).slice(0, -1)),
    );
    expect(sources).toEqual(
      expect.arrayContaining(["package.json", "package-lock.json", "tsconfig.json", "src"]),
    );
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(ignore, `${src} is ignored`).not.toContain(src);
    }
  });
});

describe("runtime settings", () => {
  test("runs as a non-root user that the image creates", () => {
    const users = ops(runtime, "USER");
    expect(users.length).toBeGreaterThanOrEqual(1);
    const user = (users.at(-1) as Instruction).args;
    const [name, group] = user.split(":");
    expect(["root", "0", ""]).not.toContain(name as string);
    if (group !== undefined) expect(["root", "0", ""]).not.toContain(group);
    const created = ops(runtime, "RUN").some(
      (r) => /useradd\b/.test(r.args) && r.args.includes(`--uid ${name}`),
    );
    expect(created).toBe(true);
  });

  test("DATA_DIR=/data is a volume owned by that user, made before VOLUME", () => {
    const env = ops(runtime, "ENV")
      .map((e) => e.args)
      .join(" ");
    expect(env).toMatch(/\bDATA_DIR=\/data\b/);
    const volume = runtime.body.findIndex((i) => i.op === "VOLUME");
    expect(volume).toBeGreaterThanOrEqual(0);
    const declared = (runtime.body[volume] as Instruction).args;
    expect(declared === "/data" || JSON.stringify(JSON.parse(declared)) === '["/data"]').toBe(true);
    const chown = runtime.body.findIndex(
      (i) => i.op === "RUN" && /chown \S+ \/data\b/.test(i.args),
    );
    expect(chown).toBeGreaterThanOrEqual(0);
    expect(chown).toBeLessThan(volume);
    // Changes to /data after VOLUME are discarded by Docker.
    for (const i of runtime.body.slice(volume + 1))
      if (i.op === "RUN") expect(i.args).not.toContain("/data");
  });

  test("EXPOSE 8000, the server's default port", () => {
    expect(ops(runtime, "EXPOSE").map((e) => e.args)).toEqual(["8000"]);
    expect(loadConfig({}).port).toBe(8000);
    const env = ops(runtime, "ENV")
      .map((e) => e.args)
      .join(" ");
    const port = /\bPORT=(\d+)/.exec(env);
    if (port) expect(port[1]).toBe("8000");
    const host = /\bHOST=(\S+)/.exec(env);
    if (host) expect(host[1]).toBe("0.0.0.0");
  });

  test("HEALTHCHECK targets /api/v1/ws/health with a timeout", () => {
    const cmd = healthcheckCommand();
    expect(cmd.join(" ")).toContain("/api/v1/ws/health");
    const args = (ops(runtime, "HEALTHCHECK")[0] as Instruction).args;
    expect(args).toMatch(/--timeout=\d+s/);
    // The runtime has no curl or wget, so the check must not need them.
    if (!ops(runtime, "RUN").some((r) => /apt-get install[^&]*\b(curl|wget)\b/.test(r.args)))
      expect(cmd.join(" ")).not.toMatch(/\b(curl|wget)\b/);
  });
});

describe("HEALTHCHECK against a live server", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(() => srv.stop());

  test("the path is a real route: 200, healthy, no auth", async () => {
    const res = await fetch(`http://127.0.0.1:${srv.port}/api/v1/ws/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "healthy",
      service: "websocket",
      active_connections: 0,
      node: expect.stringMatching(/^[0-9a-f]{12}$/),
      redis: "off",
    });
  });

  const bash = Bun.which("bash");
  test.skipIf(!bash)("the HEALTHCHECK command itself passes against it", async () => {
    const [shell, ...rest] = healthcheckCommand();
    expect(shell).toBe("bash");
    const run = (port: number) =>
      Bun.spawn([bash as string, ...rest], {
        env: { PATH: "/usr/bin:/bin", PORT: String(port) },
        stdout: "ignore",
        stderr: "ignore",
      }).exited;
    expect(await run(srv.port)).toBe(0);
  });

  test.skipIf(!bash)("and fails when nothing answers, or the answer is not healthy", async () => {
    const [, ...rest] = healthcheckCommand();
    const run = (port: number) =>
      Bun.spawn([bash as string, ...rest], {
        env: { PATH: "/usr/bin:/bin", PORT: String(port) },
        stdout: "ignore",
        stderr: "ignore",
      }).exited;
    // A server that answers something else, then the same port with nothing listening.
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("nope") });
    const port = other.port as number;
    expect(await run(port)).not.toBe(0);
    await other.stop(true);
    expect(await run(port)).not.toBe(0);
  });
});
