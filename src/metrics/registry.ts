// A minimal Prometheus registry written by hand: counters, gauges and histograms rendered in the
// text exposition format (version 0.0.4). Counting is a plain number increment on an object
// resolved once (a counter, or one label value's child made up front); nothing is looked up by
// string per event. Gauges that mirror state elsewhere are read by a callback at scrape time.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One sample's value in the exposition format (integers as is; ±Inf and NaN spelled out). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** A label value escaped for the exposition format (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

const labelText = (labels: Record<string, string>): string => {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k] as string)}"`).join(",")}}`;
};

/** A monotonic count; `value++` on the hot path. */
export class Counter {
  value = 0;
  constructor(readonly labels: Record<string, string> = {}) {}
  inc(n = 1): void {
    this.value += n;
  }
}

/** Cumulative histogram over fixed upper bounds (seconds); `observe` walks the few bounds. */
export class Histogram {
  /** Per bound, observations ≤ it and > the previous bound (made cumulative when rendered). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly bounds: readonly number[],
    readonly labels: Record<string, string> = {},
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        return;
      }
    }
  }
}

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  render(out: string[]): void;
}

export class Registry {
  private readonly families: Family[] = [];

  private add(f: Family): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(f.name)) throw new Error(`bad metric name ${f.name}`);
    if (this.families.some((x) => x.name === f.name)) throw new Error(`duplicate ${f.name}`);
    this.families.push(f);
  }

  /** A counter without labels. */
  counter(name: string, help: string): Counter {
    const c = new Counter();
    this.add({
      name,
      help,
      type: "counter",
      render: (out) => out.push(`${name} ${formatValue(c.value)}`),
    });
    return c;
  }

  /**
   * A counter with one label: `child(value)` makes (or returns) that value's counter. Call it
   * when wiring, not per event; children made up front are rendered even at 0.
   */
  labelledCounter(name: string, help: string, label: string): (value: string) => Counter {
    const children = new Map<string, Counter>();
    this.add({
      name,
      help,
      type: "counter",
      render: (out) => {
        for (const c of children.values())
          out.push(`${name}${labelText(c.labels)} ${formatValue(c.value)}`);
      },
    });
    return (value) => {
      let c = children.get(value);
      if (c === undefined) {
        c = new Counter({ [label]: value });
        children.set(value, c);
      }
      return c;
    };
  }

  /** A gauge read at scrape time; `read` returning null leaves the sample out. */
  gauge(
    name: string,
    help: string,
    read: () => number | null,
    labels: Record<string, string> = {},
  ): void {
    this.add({
      name,
      help,
      type: "gauge",
      render: (out) => {
        const v = read();
        if (v !== null) out.push(`${name}${labelText(labels)} ${formatValue(v)}`);
      },
    });
  }

  /** A histogram with one label: `child(value)` as for labelledCounter. */
  labelledHistogram(
    name: string,
    help: string,
    label: string,
    bounds: readonly number[],
  ): (value: string) => Histogram {
    const children = new Map<string, Histogram>();
    this.add({
      name,
      help,
      type: "histogram",
      render: (out) => {
        for (const h of children.values()) {
          const key = label;
          const lv = escapeLabel(h.labels[key] as string);
          let cumulative = 0;
          for (let i = 0; i < h.bounds.length; i++) {
            cumulative += h.counts[i] as number;
            out.push(
              `${name}_bucket{${key}="${lv}",le="${formatValue(h.bounds[i] as number)}"} ${cumulative}`,
            );
          }
          out.push(`${name}_bucket{${key}="${lv}",le="+Inf"} ${h.count}`);
          out.push(`${name}_sum{${key}="${lv}"} ${formatValue(h.sum)}`);
          out.push(`${name}_count{${key}="${lv}"} ${h.count}`);
        }
      },
    });
    return (value) => {
      let h = children.get(value);
      if (h === undefined) {
        h = new Histogram(bounds, { [label]: value });
        children.set(value, h);
      }
      return h;
    };
  }

  /** The whole registry in the text exposition format, ending with a newline. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families) {
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      f.render(out);
    }
    return `${out.join("\n")}\n`;
  }

  /** The names of the metric families (what a dashboard may reference, before suffixes). */
  names(): string[] {
    return this.families.map((f) => f.name);
  }
}
