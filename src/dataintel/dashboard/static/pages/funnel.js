// Funnel: steps entered / converted, drop-offs apart from those still inside their window.
import { get } from "../api.js";
import { PALETTE, chart, el, empty, fmt, table } from "../ui.js";
import { period, periodControls } from "./period.js";

const DEFAULT_STEPS = "cart_add, purchase";
const MODES = [["ordered", "Ordered"], ["strict", "Strict order"], ["unordered", "Any order"]];

function seconds(s) {
  if (s === null || s === undefined) return null;
  if (s < 120) return `${fmt(s)} s`;
  if (s < 7200) return `${fmt(s / 60)} min`;
  return `${fmt(s / 3600)} h`;
}

export async function load(params, go) {
  const p = period(params, "7d");
  const steps = (params.get("steps") || DEFAULT_STEPS).split(",").map((s) => s.trim()).filter(Boolean);
  const mode = params.get("mode") || "ordered";
  const breakdown = params.get("breakdown") || "";
  const stepsInput = el("input", { id: "steps", value: steps.join(", "), size: 40 });
  const modeInput = el("select", { id: "mode" }, MODES.map(([v, t]) => el("option", { value: v, text: t, selected: v === mode })));
  const breakdownInput = el("input", { id: "breakdown", value: breakdown, placeholder: "e.g. properties.channel", size: 22 });
  const apply = el("button", { type: "button", class: "primary", text: "Apply", onclick: () => {
    const next = new URLSearchParams(params);
    next.set("steps", stepsInput.value);
    next.set("mode", modeInput.value);
    if (breakdownInput.value.trim()) next.set("breakdown", breakdownInput.value.trim()); else next.delete("breakdown");
    go(next);
  } });
  const controls = periodControls(params, go, "7d", [
    el("label", { for: "steps" }, "Steps (comma-separated events)", stepsInput),
    el("label", { for: "mode" }, "Order", modeInput),
    el("label", { for: "breakdown" }, "Breakdown", breakdownInput), apply,
  ]);
  const data = await get("/v1/analytics/conversion", {
    step: steps, from: p.from, to: p.to, mode, breakdown: breakdown || undefined,
  });
  if (!data.steps.length || !data.steps[0].entered) {
    return el("div", {}, controls, empty("Nobody entered this funnel in the period",
      `No ${steps[0]} event between ${p.from} and ${p.to}.`, "Check the step names (the events your pipelines accept) or pick a longer period."));
  }
  const labels = data.steps.map((s) => s.label);
  const rows = data.steps.map((s) => ({ ...s, median: seconds(s.median_seconds_to_convert), average: seconds(s.average_seconds_to_convert) }));
  const parts = [controls,
    chart("funnel", `Funnel of ${labels.join(", ")}: entered, dropped off and still in the window per step`, {
      type: "bar",
      data: { labels, datasets: [
        { label: "Entered", data: data.steps.map((s) => s.entered), backgroundColor: PALETTE[0] },
        { label: "Dropped off", data: data.steps.map((s) => s.dropped_off), backgroundColor: PALETTE[5] },
        { label: "Still in window", data: data.steps.map((s) => s.in_window), backgroundColor: PALETTE[4] },
      ] },
    }),
    el("p", { class: "muted", text: `${data.excluded} excluded; "still in window": entered recently, not converted yet, their window has not ended at the period's end.` }),
    table("funnel-steps", "Steps", [
      { key: "label", label: "Step" }, { key: "entered", label: "Entered", kind: "integer" },
      { key: "converted", label: "Converted to next", kind: "integer" },
      { key: "dropped_off", label: "Dropped off", kind: "integer" }, { key: "in_window", label: "Still in window", kind: "integer" },
      { key: "conversion_from_previous", label: "From previous", kind: "percent" },
      { key: "conversion_from_first", label: "From first", kind: "percent" },
      { key: "median", label: "Median time" }, { key: "average", label: "Average time" },
    ], rows)];
  if (data.breakdown_values && data.breakdown_values.length) {
    const last = data.steps.length - 1;
    parts.push(table("funnel-breakdown", `By ${data.breakdown}`, [
      { key: (g) => g.value ?? "(none)", label: data.breakdown },
      { key: (g) => g.steps[0].entered, label: "Entered", kind: "integer" },
      { key: (g) => g.steps[last].entered, label: "Completed", kind: "integer" },
      { key: (g) => g.steps[last].conversion_from_first, label: "Conversion", kind: "percent" },
    ], data.breakdown_values));
  }
  return el("div", {}, parts);
}
