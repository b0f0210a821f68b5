// The period picker every analysis page shares: a preset range ending now, and an interval.
import { el } from "../ui.js";

export const RANGES = [
  ["1h", "Last hour", 3600], ["24h", "Last 24 hours", 86400], ["7d", "Last 7 days", 7 * 86400],
  ["30d", "Last 30 days", 30 * 86400], ["90d", "Last 90 days", 90 * 86400],
];
const INTERVALS = [["", "Automatic"], ["hour", "Hour"], ["day", "Day"], ["week", "Week"], ["month", "Month"]];

// The API parameters of the chosen period (minute-aligned so repeated loads share a cache entry).
export function period(params, fallback = "24h") {
  const range = RANGES.find((r) => r[0] === params.get("range")) || RANGES.find((r) => r[0] === fallback);
  const to = new Date(Math.ceil(Date.now() / 60000) * 60000);
  const from = new Date(to.getTime() - range[2] * 1000);
  return { range: range[0], from: from.toISOString(), to: to.toISOString(), interval: params.get("interval") || undefined };
}

export function periodControls(params, onChange, fallback = "24h", extra = []) {
  const chosen = period(params, fallback);
  const range = el("select", { id: "range" }, RANGES.map(([v, label]) => el("option", { value: v, text: label, selected: v === chosen.range })));
  const interval = el("select", { id: "interval" }, INTERVALS.map(([v, label]) => el("option", { value: v, text: label, selected: v === (params.get("interval") || "") })));
  const apply = () => {
    const next = new URLSearchParams(params);
    next.set("range", range.value);
    if (interval.value) next.set("interval", interval.value); else next.delete("interval");
    onChange(next);
  };
  range.addEventListener("change", apply);
  interval.addEventListener("change", apply);
  return el("div", { class: "controls" },
    el("label", { for: "range" }, "Period", range),
    el("label", { for: "interval" }, "Interval", interval), extra);
}
