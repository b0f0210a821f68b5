// Overview: KPI tiles beside the previous period, and the time series.
import { get } from "../api.js";
import { PALETTE, chart, el, empty, table, tile, when } from "../ui.js";
import { period, periodControls } from "./period.js";

const METRICS = [
  ["events", "Events", "integer"], ["active_users", "Active users", "integer"],
  ["carts_created", "Carts created", "integer"], ["carts_abandoned", "Carts abandoned", "integer", true],
  ["carts_recovered", "Carts recovered", "integer"], ["recovery_rate", "Recovery rate", "percent"],
  ["revenue", "Revenue", "money"], ["recovered_revenue", "Recovered revenue", "money"],
  ["interventions_sent", "Interventions sent", "integer"],
];

export async function load(params, go) {
  const p = period(params);
  const data = await get("/v1/analytics/overview", { from: p.from, to: p.to, interval: p.interval });
  const controls = periodControls(params, go);
  if (!data.totals.events.value && !data.totals.events.previous) {
    return el("div", {}, controls, empty("No events in this period",
      "Send events to POST /v1/events (see the README's quick start), or pick a longer period.",
      "Carts, purchases and interventions appear once the platform pipeline is enabled: POST /api/v1/projects/{id}/templates/platform."));
  }
  const labels = data.series.map((point) => when(point.start));
  const series = (key) => data.series.map((point) => point.metrics[key].value);
  const rows = data.series.map((point) => ({ start: point.start, ...Object.fromEntries(METRICS.map(([k]) => [k, point.metrics[k].value])) }));
  return el("div", {}, controls,
    el("section", { "aria-label": "Totals", class: "tiles", "data-testid": "tiles" },
      METRICS.map(([key, label, kind, lower]) => tile(key, label, data.totals[key], kind, lower))),
    el("h2", { text: "Activity" }),
    chart("activity", "Events and active users per interval", {
      type: "line",
      data: { labels, datasets: [
        { label: "Events", data: series("events"), borderColor: PALETTE[0], backgroundColor: PALETTE[0] },
        { label: "Active users", data: series("active_users"), borderColor: PALETTE[1], backgroundColor: PALETTE[1] },
      ] },
    }),
    el("h2", { text: "Carts" }),
    chart("carts", "Carts created, abandoned and recovered per interval", {
      type: "bar",
      data: { labels, datasets: [
        { label: "Carts created", data: series("carts_created"), backgroundColor: PALETTE[0] },
        { label: "Carts abandoned", data: series("carts_abandoned"), backgroundColor: PALETTE[5] },
        { label: "Carts recovered", data: series("carts_recovered"), backgroundColor: PALETTE[2] },
      ] },
    }),
    el("h2", { text: "Revenue" }),
    chart("revenue", "Revenue and recovered revenue per interval", {
      type: "line",
      data: { labels, datasets: [
        { label: "Revenue", data: series("revenue"), borderColor: PALETTE[3], backgroundColor: PALETTE[3] },
        { label: "Recovered revenue", data: series("recovered_revenue"), borderColor: PALETTE[2], backgroundColor: PALETTE[2] },
      ] },
    }),
    table("overview-series", "Per interval", [
      { key: (row) => when(row.start), label: "Interval start (UTC)" },
      ...METRICS.map(([key, label, kind]) => ({ key, label, kind })),
    ], rows));
}
