// Revenue: attribution by channel / action / campaign, and the incremental revenue measured
// against the holdout, with its 95 % interval.
import { get } from "../api.js";
import { PALETTE, chart, el, empty, fmt, table } from "../ui.js";
import { period, periodControls } from "./period.js";

const MODELS = [["last_touch", "Last touch"], ["first_touch", "First touch"], ["linear", "Linear"],
  ["time_decay", "Time decay"], ["position_based", "Position based (40/20/40)"]];

function interval(e, kind) {
  if (!e || e.estimate === null || e.estimate === undefined) return "–";
  return `${fmt(e.estimate, kind)} [${fmt(e.low, kind)}, ${fmt(e.high, kind)}]`;
}

export async function load(params, go) {
  const p = period(params, "7d");
  const model = params.get("model") || "last_touch";
  const select = el("select", { id: "model" }, MODELS.map(([v, t]) => el("option", { value: v, text: t, selected: v === model })));
  select.addEventListener("change", () => { const next = new URLSearchParams(params); next.set("model", select.value); go(next); });
  const controls = periodControls(params, go, "7d", [el("label", { for: "model" }, "Attribution model", select)]);
  const data = await get("/v1/analytics/revenue", { from: p.from, to: p.to, model });
  if (!data.conversions && !data.incremental.control.carts && !data.incremental.treatment.carts) {
    return el("div", {}, controls, empty("No purchases or interventions in this period",
      `Revenue comes from ${data.purchase_event} events; credit goes to intervention events before them.`,
      "The intervention engine sends intervention and holdout events to the platform pipeline."));
  }
  const inc = data.incremental;
  const cols = [{ key: (r) => r.value ?? "(none)", label: "Value" }, { key: "conversions", label: "Conversions", kind: "number" },
    { key: "revenue", label: "Revenue", kind: "money" }, { key: "touches", label: "Touches", kind: "integer" },
    { key: "assisted_conversions", label: "Assisted", kind: "integer" }];
  const arms = [{ arm: "Intervened", ...inc.treatment }, { arm: "Held out (control)", ...inc.control }];
  return el("div", {}, controls,
    el("section", { class: "tiles", "aria-label": "Totals" },
      tileOf("revenue", "Revenue", data.revenue, "money"), tileOf("conversions", "Conversions", data.conversions, "integer"),
      tileOf("attributed-revenue", "Attributed revenue", data.attributed.revenue, "money"),
      tileOf("unattributed-revenue", "Unattributed revenue", data.unattributed.revenue, "money")),
    el("h2", { text: "Attributed revenue by channel" }),
    chart("attribution", "Attributed revenue by channel", {
      type: "bar",
      data: { labels: data.by_channel.map((r) => r.value ?? "(none)"),
        datasets: [{ label: "Attributed revenue", data: data.by_channel.map((r) => r.revenue), backgroundColor: PALETTE[0] }] },
    }),
    table("attribution-channel", "By channel", cols, data.by_channel),
    table("attribution-action", "By action", cols, data.by_action),
    table("attribution-campaign", "By campaign", cols, data.by_campaign),
    el("h2", { text: "Incremental effect (intervened vs held out)" }),
    el("p", { "data-testid": "uplift", "data-value": inc.uplift.recovery_rate_difference.estimate ?? "" },
      `Recovery rate difference: ${interval(inc.uplift.recovery_rate_difference, "percent")} (${inc.rate_method}); `,
      `revenue per cart difference: ${interval(inc.uplift.revenue_per_cart_difference, "money")} (${inc.revenue_method}); `,
      `incremental revenue: ${interval(inc.uplift.incremental_revenue, "money")}. 95 % intervals.`),
    chart("uplift", "Recovery rate with its 95 % interval, intervened vs held out", {
      type: "bar",
      data: { labels: arms.map((a) => a.arm), datasets: [
        { label: "Recovery rate", data: arms.map((a) => a.recovery_rate), backgroundColor: [PALETTE[0], PALETTE[1]] },
        { label: "95 % low", data: arms.map((a) => a.recovery_rate_low), type: "line", showLine: false, borderColor: PALETTE[7], backgroundColor: PALETTE[7] },
        { label: "95 % high", data: arms.map((a) => a.recovery_rate_high), type: "line", showLine: false, borderColor: PALETTE[7], backgroundColor: PALETTE[7] },
      ] },
    }),
    table("uplift-arms", "Groups", [{ key: "arm", label: "Group" }, { key: "carts", label: "Carts", kind: "integer" },
      { key: "recovered", label: "Recovered", kind: "integer" }, { key: "recovery_rate", label: "Recovery rate", kind: "percent" },
      { key: "revenue", label: "Revenue", kind: "money" }, { key: "revenue_per_cart", label: "Revenue per cart", kind: "money" }], arms),
    table("uplift-channel", "Uplift by channel", [{ key: (r) => r.value ?? "(none)", label: "Channel" },
      { key: (r) => r.treatment.carts, label: "Carts", kind: "integer" },
      { key: (r) => interval(r.uplift.recovery_rate_difference, "percent"), label: "Recovery rate difference [95 %]" },
      { key: (r) => interval(r.uplift.incremental_revenue, "money"), label: "Incremental revenue [95 %]" }], inc.by_channel));
}

function tileOf(id, label, value, kind) {
  return el("div", { class: "tile", "data-testid": `tile-${id}` },
    el("div", { class: "label", text: label }), el("div", { class: "value", "data-value": value ?? "", text: fmt(value, kind) }));
}
