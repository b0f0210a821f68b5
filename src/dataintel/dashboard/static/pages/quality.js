// Data quality: the project's score and, per pipeline, feature and event, the score of the
// rules that speak for it (GET /v1/quality/status), with the failing rules named; then the
// most recent failing results (GET /v1/quality/results?status=fail). Scores are 0–100 (the
// formula is in docs/quality.md); a scope without a scored rule shows "–", never 0 or 100.
import { get } from "../api.js";
import { el, empty, fmt, table, when } from "../ui.js";

const SCOPE_COLUMNS = [
  { key: "name", label: "Name" },
  { key: "score", label: "Score" },
  { key: "rules", label: "Rules", kind: "integer" },
  { key: (s) => s.failing_rules.join(", "), label: "Failing rules" },
  { key: (s) => s.errored_rules.join(", "), label: "Errored rules" },
  { key: (s) => when(s.last_run), label: "Last run (UTC)" },
];
const RESULT_COLUMNS = [
  { key: "rule", label: "Rule" },
  { key: "type", label: "Type" },
  { key: "severity", label: "Severity" },
  { key: "observed", label: "Observed (failing %, or age in s)" },
  { key: "pass_fraction", label: "Pass fraction", kind: "percent" },
  { key: (r) => `${r.passing ?? "–"} / ${r.total ?? "–"}`, label: "Passing / total" },
  { key: (r) => when(r.evaluated_at), label: "Evaluated (UTC)" },
];

function summary(overall) {
  const tile = (id, label, value, text) => el("div", { class: "tile", "data-testid": `tile-${id}` },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", "data-value": value ?? "", text }));
  return el("div", { class: "tiles" },
    tile("score", "Quality score", overall.score, fmt(overall.score)),
    tile("failing", "Failing rules", overall.failing_rules.length, fmt(overall.failing_rules.length, "integer")),
    tile("rules", "Rules", overall.rules, fmt(overall.rules, "integer")),
    tile("last-run", "Last run (UTC)", overall.last_run, when(overall.last_run)));
}

export async function load() {
  const [status, failing] = await Promise.all([
    get("/v1/quality/status"),
    get("/v1/quality/results", { status: "fail", limit: 20 }),
  ]);
  if (!status.overall.rules) {
    return empty("No quality rules deployed in this project",
      "Define them in the config (PUT /api/v1/projects/{project}/quality, or quality: in a project file) and deploy.");
  }
  return el("div", { class: "quality" },
    summary(status.overall),
    table("quality-pipelines", "Pipelines", SCOPE_COLUMNS, status.pipelines),
    table("quality-features", "Features", SCOPE_COLUMNS, status.features),
    table("quality-events", "Events", SCOPE_COLUMNS, status.events),
    failing.results.length
      ? table("quality-failing", "Recent failing results", RESULT_COLUMNS, failing.results)
      : empty("No failing result", "Every rule passed in its recent runs."));
}
