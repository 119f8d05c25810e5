// A strict parser of the Prometheus text exposition format (0.0.4) as Kabar writes it, for the
// metrics tests: every line is `# HELP`, `# TYPE` or a sample of the family announced last;
// histogram buckets are cumulative, ordered by `le`, and end with `+Inf` equal to `_count`.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/;

function parseValue(s: string, line: string): number {
  if (s === "+Inf") return Number.POSITIVE_INFINITY;
  if (s === "-Inf") return Number.NEGATIVE_INFINITY;
  if (s === "NaN") return Number.NaN;
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(s)) throw new Error(`bad value in: ${line}`);
  return Number(s);
}

function parseLabels(s: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = s;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`bad labels in: ${line}`);
    const key = m[1] as string;
    if (key in out) throw new Error(`label ${key} twice in: ${line}`);
    out[key] = (m[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
    rest = rest.slice(m[0].length);
    if (m[3] === "" && rest.length > 0) throw new Error(`bad labels in: ${line}`);
  }
  return out;
}

/** Parses the whole text; throws on the first line that breaks a rule. */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  let current: Family | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") throw new Error("empty line");
    if (line.startsWith("# HELP ")) {
      const m = new RegExp(`^# HELP (${NAME}) (.+)$`).exec(line);
      if (!m) throw new Error(`bad HELP: ${line}`);
      if (families.has(m[1] as string)) throw new Error(`family twice: ${m[1]}`);
      pendingHelp = { name: m[1] as string, help: m[2] as string };
      current = null;
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram)$`).exec(line);
      if (!m) throw new Error(`bad TYPE: ${line}`);
      const name = m[1] as string;
      if (pendingHelp?.name !== name) throw new Error(`TYPE without its HELP: ${line}`);
      current = {
        name,
        type: m[2] as Family["type"],
        help: pendingHelp.help,
        samples: [],
      };
      families.set(name, current);
      pendingHelp = null;
      continue;
    }
    if (line.startsWith("#")) throw new Error(`unexpected comment: ${line}`);
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample: ${line}`);
    if (current === null) throw new Error(`sample outside a family: ${line}`);
    const name = m[1] as string;
    const allowed =
      current.type === "histogram"
        ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`]
        : [current.name];
    if (!allowed.includes(name)) throw new Error(`sample ${name} in family ${current.name}`);
    const labels = parseLabels(m[2] ?? "", line);
    const value = parseValue(m[3] as string, line);
    if (current.type === "counter" && !(value >= 0)) throw new Error(`negative counter: ${line}`);
    current.samples.push({ name, labels, value });
  }
  if (pendingHelp !== null) throw new Error(`HELP without TYPE: ${pendingHelp.name}`);
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

const seriesKey = (labels: Record<string, string>, drop: string) =>
  JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => k !== drop)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  const of = (key: string) => {
    let s = series.get(key);
    if (s === undefined) {
      s = { buckets: [] };
      series.set(key, s);
    }
    return s;
  };
  for (const s of f.samples) {
    const key = seriesKey(s.labels, "le");
    if (s.name.endsWith("_bucket")) {
      const le = s.labels.le;
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      of(key).buckets.push([parseValue(le, le), s.value]);
    } else if (s.name.endsWith("_sum")) of(key).sum = s.value;
    else of(key).count = s.value;
  }
  for (const [key, s] of series) {
    const where = `${f.name}${key}`;
    if (s.count === undefined || s.sum === undefined) throw new Error(`${where}: no _sum/_count`);
    const last = s.buckets.at(-1);
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${where}: no +Inf bucket last`);
    if (last[1] !== s.count) throw new Error(`${where}: +Inf bucket ${last[1]} ≠ count ${s.count}`);
    for (let i = 1; i < s.buckets.length; i++) {
      const [le0, v0] = s.buckets[i - 1] as [number, number];
      const [le1, v1] = s.buckets[i] as [number, number];
      if (!(le1 > le0)) throw new Error(`${where}: le not increasing`);
      if (v1 < v0) throw new Error(`${where}: buckets not cumulative`);
    }
  }
}

/** The value of one sample (labels must match exactly); undefined when absent. */
export function value(
  families: Map<string, Family>,
  family: string,
  labels: Record<string, string> = {},
  sample = family,
): number | undefined {
  const key = seriesKey(labels, "");
  return families
    .get(family)
    ?.samples.find((s) => s.name === sample && seriesKey(s.labels, "") === key)?.value;
}
