// Data quality: the project's open alerts (GET /v1/quality/alerts), each with an Acknowledge
// button for a credential that may (config:write); the project's score and, per pipeline,
// feature and event, the score of the rules that speak for it (GET /v1/quality/status), with
// the failing rules named; then the most recent failing results (GET /v1/quality/results
// ?status=fail). Scores are 0–100 (the formula is in docs/quality.md); a scope without a
// scored rule shows "–", never 0 or 100.
import { get, granted, post } from "../api.js";
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

// Open and acknowledged alerts, most recent first; acknowledging one updates its row.
function alertsTable(alerts) {
  const said = el("p", { class: "muted", role: "status", "data-testid": "alert-status" });
  const mayAck = granted.has("config:write");
  const head = el("tr", {}, ["Severity", "Kind", "Alert", "First seen (UTC)", "Last seen (UTC)",
    "Occurrences", "Status", ""].map((t) => el("th", { scope: "col", text: t })));
  const rows = alerts.map((a) => {
    const state = el("td", { "data-value": a.status, text: a.status });
    const action = el("td");
    if (a.status === "open" && mayAck) {
      const button = el("button", { type: "button", "data-testid": `ack-${a.id}`, text: "Acknowledge" });
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const done = await post(`/v1/quality/alerts/${a.id}/acknowledge`);
          state.dataset.value = done.status;
          state.textContent = done.status;
          button.remove();
          said.textContent = `Acknowledged: ${a.title}`;
        } catch (e) {
          button.disabled = false;
          said.textContent = `Could not acknowledge: ${e.message}`;
        }
      });
      action.append(button);
    }
    return el("tr", { "data-alert-id": a.id, "data-severity": a.severity },
      el("td", { "data-value": a.severity, class: `severity ${a.severity}`, text: a.severity }),
      el("td", { "data-value": a.kind, text: a.kind }),
      el("td", { "data-value": a.title, text: a.title }),
      el("td", { "data-value": a.first_seen, text: when(a.first_seen) }),
      el("td", { "data-value": a.last_seen, text: when(a.last_seen) }),
      el("td", { "data-value": a.occurrences, text: fmt(a.occurrences, "integer") }),
      state, action);
  });
  return el("section", { class: "table-block", "aria-labelledby": "quality-alerts-caption" },
    el("div", { class: "table-head" }, el("h2", { id: "quality-alerts-caption", text: "Open alerts" })),
    rows.length
      ? el("table", { "data-testid": "table-quality-alerts" }, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", { class: "muted", "data-testid": "no-alerts", text: "No open alert." }),
    said);
}

export async function load() {
  const [status, failing, open, acknowledged] = await Promise.all([
    get("/v1/quality/status"),
    get("/v1/quality/results", { status: "fail", limit: 20 }),
    get("/v1/quality/alerts", { status: "open", limit: 100 }),
    get("/v1/quality/alerts", { status: "acknowledged", limit: 100 }),
  ]);
  const live = [...open.alerts, ...acknowledged.alerts].sort((a, b) => b.id - a.id);
  if (!status.overall.rules && !live.length) {
    return empty("No quality rules deployed in this project",
      "Define them in the config (PUT /api/v1/projects/{project}/quality, or quality: in a project file) and deploy.");
  }
  return el("div", { class: "quality" },
    alertsTable(live),
    summary(status.overall),
    table("quality-pipelines", "Pipelines", SCOPE_COLUMNS, status.pipelines),
    table("quality-features", "Features", SCOPE_COLUMNS, status.features),
    table("quality-events", "Events", SCOPE_COLUMNS, status.events),
    failing.results.length
      ? table("quality-failing", "Recent failing results", RESULT_COLUMNS, failing.results)
      : empty("No failing result", "Every rule passed in its recent runs."));
}
