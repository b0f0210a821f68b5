// Model performance per model version: scores, ROC curve, calibration, top-k lift, over time.
import { get } from "../api.js";
import { PALETTE, chart, el, empty, table, when } from "../ui.js";
import { period, periodControls } from "./period.js";

export async function load(params, go) {
  const p = period(params, "30d");
  const controls = periodControls(params, go, "30d");
  const data = await get("/v1/analytics/performance", { from: p.from, to: p.to, interval: p.interval || "day" });
  if (!data.models.length || !data.models.some((m) => m.predictions)) {
    return el("div", {}, controls, empty("No scored predictions in this period",
      "The AI engine sends prediction events (cart_id, probability, model_version) to the platform pipeline;",
      `a prediction counts once its outcome horizon (${data.horizon}) has passed or its cart was bought.`));
  }
  const models = data.models.filter((m) => m.predictions);
  const name = (m) => m.model_version ?? "(no version)";
  const roc = models.filter((m) => m.roc && m.roc.length).map((m, i) => ({
    label: name(m), data: m.roc.map((pt) => ({ x: pt.fpr, y: pt.tpr })), borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length], showLine: true, pointRadius: 0,
  }));
  const calibration = models.map((m, i) => ({
    label: name(m), data: m.calibration.map((b) => ({ x: b.mean_predicted, y: b.observed_rate })),
    borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length], showLine: true,
  }));
  const diagonal = { label: "Perfect", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], borderColor: "#999", borderDash: [4, 4], showLine: true, pointRadius: 0 };
  const unit = { x: { type: "linear", min: 0, max: 1 }, y: { min: 0, max: 1 } };
  const series = models.flatMap((m) => m.series.map((pt) => ({ version: name(m), ...pt })));
  return el("div", {}, controls,
    table("models", "By model version", [
      { key: name, label: "Model version" }, { key: "predictions", label: "Predictions", kind: "integer" },
      { key: "positives", label: "Purchased", kind: "integer" }, { key: "base_rate", label: "Base rate", kind: "percent" },
      { key: "roc_auc", label: "ROC AUC" }, { key: "pr_auc", label: "PR AUC" }, { key: "brier", label: "Brier" },
      { key: "log_loss", label: "Log loss" }, { key: "pending", label: "Pending", kind: "integer" },
    ], models),
    el("h2", { text: "ROC curve" }),
    chart("roc", "ROC curve per model version: true positive rate against false positive rate", {
      type: "scatter", data: { datasets: [...roc, diagonal] },
      options: { scales: { x: { ...unit.x, title: { display: true, text: "False positive rate" } }, y: { ...unit.y, title: { display: true, text: "True positive rate" } } } },
    }),
    el("h2", { text: "Calibration" }),
    chart("calibration", "Calibration per model version: observed purchase rate against mean predicted probability", {
      type: "scatter", data: { datasets: [...calibration, diagonal] },
      options: { scales: { x: { ...unit.x, title: { display: true, text: "Mean predicted" } }, y: { ...unit.y, title: { display: true, text: "Observed rate" } } } },
    }),
    table("top", "Precision, recall and lift at the top", [
      { key: "version", label: "Model version" }, { key: "percent", label: "Top %" },
      { key: "count", label: "Carts", kind: "integer" }, { key: "precision", label: "Precision", kind: "percent" },
      { key: "recall", label: "Recall", kind: "percent" }, { key: "lift", label: "Lift" },
    ], models.flatMap((m) => m.top.map((t) => ({ version: name(m), ...t })))),
    table("model-series", "Over time", [
      { key: "version", label: "Model version" }, { key: (r) => when(r.start), label: "Interval start (UTC)" },
      { key: "predictions", label: "Predictions", kind: "integer" }, { key: "roc_auc", label: "ROC AUC" },
      { key: "brier", label: "Brier" },
    ], series));
}
