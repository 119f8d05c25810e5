// Readings from /proc: a process's resident memory and CPU time, and what machine this is.
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on Linux). */
const CLK_TCK = 100;

/** Resident set size in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** User + system CPU seconds of the whole process, all threads (/proc/PID/stat utime+stime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at field 3, "state".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`bad stat for ${pid}`);
  return (utime + stime) / CLK_TCK;
}

/** Machine-wide CPU seconds since boot (/proc/stat): processes (user+nice+system) and steal. */
export function machineCpu(): { tasks: number; steal: number } {
  const first = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = first
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { tasks: (user + nice + system) / CLK_TCK, steal: steal / CLK_TCK };
}

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  bun: string;
  openFilesLimit: number | null;
}

function openFilesLimit(): number | null {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const m = /^Max open files\s+(\d+)/m.exec(limits);
    return m?.[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function machine(): Machine {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    bun: Bun.version,
    openFilesLimit: openFilesLimit(),
  };
}
