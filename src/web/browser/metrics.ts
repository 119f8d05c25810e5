// Reading the admin chart's counter out of the Prometheus text format of `/metrics`.

/** The sum of `kabar_frames_in_total` over its series with type="message"; undefined if none. */
export function messageFrames(metrics: string): number | undefined {
  let sum: number | undefined;
  for (const row of metrics.split("\n")) {
    if (!row.startsWith("kabar_frames_in_total{")) continue;
    const close = row.indexOf("}");
    if (close < 0 || !/(^|[{,])type="message"/.test(row.slice(0, close + 1))) continue;
    const value = Number(
      row
        .slice(close + 1)
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}
