// GDPR: the project's forget requests, newest first, each with its status in every store (a
// failed store shows its reason: nothing is rolled up), a filter by user id, and a form that
// files a request and follows it until it has finished or failed.
//
// A subject's user id is never shown: the API returns none, and the ids an officer types stay
// in their inputs — not in the address bar, the history or the page's text (the filter is the
// page's own state, not a URL parameter; the form's input is emptied once a request is filed).
import { get, post } from "../api.js";
import { el, empty, fmt } from "../ui.js";

export const TYPES = [
  ["SUPPRESS_WITH_DELETE", "Suppress and delete: stop collecting, erase everywhere"],
  ["DELETE_ONLY", "Delete only: erase what exists, keep collecting"],
  ["SUPPRESS_ONLY", "Suppress only: stop collecting, erase nothing"],
  ["UNSUPPRESS", "Unsuppress: collect again"],
];
const STORES = {
  suppression: "Suppression list", data_lake: "Data lake", event_log: "Event log",
  analytics: "Analytics store", online: "Online store", dead_letters: "Dead letters", reports: "Reports",
};
const PROPAGATION = {
  not_configured: "not configured (no forget webhook)", pending: "pending",
  delivered: "delivered", not_applicable: "not applicable (nothing erased)",
};
const DONE = new Set(["finished", "failed"]);
const LIMIT = 100;
const FOLLOWED = 10; // unfinished requests of the list followed at once
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// An instant to the second, in UTC as the API gives it.
function instant(iso) {
  return iso ? `${iso.replace("T", " ").slice(0, 19)} UTC` : "–";
}

// The status as a word (never a colour alone) in a coloured badge.
function badge(status) {
  return el("span", { class: `badge ${status}`, "data-testid": "badge", text: status });
}

function storeTable(request) {
  const head = ["Store", "Status", "Failed attempts", "Erased", "Finished", "Last error"];
  const rows = request.stores.map((s) => el("tr", { "data-store": s.store, "data-status": s.status },
    el("th", { scope: "row", "data-value": s.store }, STORES[s.store] || s.store),
    el("td", { "data-value": s.status }, badge(s.status)),
    el("td", { "data-value": s.attempts }, fmt(s.attempts, "integer")),
    el("td", { "data-value": s.erased ?? "" }, fmt(s.erased, "integer")),
    el("td", { "data-value": s.finished_at ?? "" }, instant(s.finished_at)),
    el("td", { class: "reason", "data-value": s.error ?? "" }, s.error ?? "")));
  return el("table", { "data-testid": "stores", "aria-label": `Stores of request ${request.request_id}` },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows));
}

function card(request) {
  const facts = [
    ["Status", badge(request.status)],
    ["Requested by", request.requested_by],
    ["Created", instant(request.created_at)],
    ["Started", instant(request.started_at)],
    ["Finished", instant(request.finished_at)],
    ["Propagation", PROPAGATION[request.propagation] || request.propagation],
  ];
  if (request.next_attempt_at && request.stores.some((s) => s.status === "failed")) {
    facts.push(["Next attempt", instant(request.next_attempt_at)]);
  }
  return el("article", {
    class: `request ${request.status}`, "data-testid": "request",
    "data-request-id": request.request_id, "data-status": request.status,
    "aria-labelledby": `${request.request_id}-title`,
  },
  el("h2", { id: `${request.request_id}-title` }, `${request.type} `, el("code", { text: request.request_id })),
  el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", {}, v)))),
  request.error ? el("p", { class: "error", "data-testid": "request-error" }, `Failed: ${request.error}`) : null,
  storeTable(request));
}

export async function load() {
  const root = el("div", { class: "gdpr" });
  const list = el("div", { "data-testid": "requests" });
  const summary = el("p", { class: "muted", "data-testid": "summary" });
  const filed = el("p", { role: "status", "data-testid": "filed" });
  let applied = ""; // the user id of the filter in force ("" : every request)
  let shown = [];
  const following = new Set();
  let latest = null; // the request filed last with the form: its progress is announced
  const announce = (r) => { filed.textContent = `Request ${r.request_id} (${r.type}): ${r.status}.`; };

  function renderList() {
    summary.textContent = applied
      ? `${shown.length} request(s) of the user id in the filter, newest first.`
      : `The ${shown.length} most recent request(s), newest first (at most ${LIMIT}).`;
    if (!shown.length) {
      list.replaceChildren(applied
        ? empty("No request for this user id", "The filter matches the exact user id a request was filed for.")
        : empty("No GDPR requests in this project yet",
          "File one with the form above, or with POST /v1/gdpr/forget/{user_id}."));
      return;
    }
    list.replaceChildren(...shown.map(card));
  }

  // Shows the request's latest state: in place if listed, else (when ``add``) first, the newest.
  function upsert(request, add = true) {
    const at = shown.findIndex((r) => r.request_id === request.request_id);
    if (at < 0 && !add) return; // filtered out since it was followed
    if (at >= 0) shown[at] = request; else shown.unshift(request);
    const old = [...list.querySelectorAll("[data-testid=request]")]
      .find((node) => node.dataset.requestId === request.request_id);
    if (old && at >= 0) old.replaceWith(card(request)); else renderList();
  }

  // A request's status, or null after waiting out a 429 (GDPR routes have a stricter rate
  // limit, DATAINTEL_SENSITIVE_RATE_LIMIT, than the fast polls below would keep under).
  async function statusOf(id) {
    try {
      return await get(`/v1/gdpr/status/${id}`);
    } catch (e) {
      if (e.status !== 429) throw e;
      await sleep(1000 * (e.problem.retry_after || 5));
      return null;
    }
  }

  // Polls GET /v1/gdpr/status/{id} until the request has finished or failed (or the page is left).
  async function follow(id) {
    if (following.has(id)) return;
    following.add(id);
    try {
      for (let polls = 0; ; polls++) {
        await sleep(polls < 40 ? 500 : 5000); // a failed store is retried with back-off
        if (!root.isConnected) return;
        const request = await statusOf(id);
        if (!root.isConnected) return;
        if (request === null) continue; // over the GDPR routes' rate limit: waited, poll again
        upsert(request, false);
        if (id === latest) announce(request);
        if (DONE.has(request.status)) return;
      }
    } catch (e) {
      if (root.isConnected) filed.textContent = `Could not follow request ${id}: ${e.message}`;
    } finally {
      following.delete(id);
    }
  }

  async function refresh() {
    const data = await get("/v1/gdpr/requests", { limit: LIMIT, user_id: applied || undefined });
    shown = data.requests;
    renderList();
    shown.filter((r) => !DONE.has(r.status)).slice(0, FOLLOWED).forEach((r) => follow(r.request_id));
  }

  // The filter: by the exact user id (the API compares keyed hashes; it returns no user id).
  const filterInput = el("input", {
    id: "gdpr-filter", type: "search", autocomplete: "off", spellcheck: "false", maxlength: 256, size: 28,
  });
  const filterProblem = el("p", { class: "error", role: "alert" });
  const filterForm = el("form", { class: "controls", role: "search", "aria-label": "Filter requests by user id" },
    el("label", { for: "gdpr-filter" }, "User id", filterInput),
    el("button", { type: "submit", text: "Filter" }),
    el("button", { type: "button", text: "Show all", onclick: () => { filterInput.value = ""; filterForm.requestSubmit(); } }),
    filterProblem);
  filterForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    filterProblem.textContent = "";
    applied = filterInput.value.trim();
    try { await refresh(); } catch (e) { filterProblem.textContent = `Could not load: ${e.message}`; }
  });

  // Filing a request: the user id and the type; then the request is followed to its end.
  const userInput = el("input", {
    id: "gdpr-user", autocomplete: "off", spellcheck: "false", required: true, maxlength: 256, size: 28,
  });
  const typeSelect = el("select", { id: "gdpr-type" }, TYPES.map(([v, t]) => el("option", { value: v, text: t })));
  const submit = el("button", { type: "submit", class: "primary", text: "File request" });
  const fileProblem = el("p", { class: "error", role: "alert", "data-testid": "file-error" });
  const fileForm = el("form", { class: "controls", "aria-labelledby": "gdpr-file-title" },
    el("label", { for: "gdpr-user" }, "User id", userInput),
    el("label", { for: "gdpr-type" }, "Type", typeSelect), submit);
  fileForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = userInput.value.trim();
    if (!user) return;
    submit.disabled = true;
    fileProblem.textContent = "";
    try {
      const created = await post(`/v1/gdpr/forget/${encodeURIComponent(user)}`, { type: typeSelect.value });
      userInput.value = ""; // the id leaves the screen once the request is filed
      if (applied && applied !== user) { applied = ""; filterInput.value = ""; } // show where it is
      latest = created.request_id;
      announce(created);
      await refresh(); // follows the unfinished requests listed, this one included
      upsert(created);
      if (!DONE.has(created.status)) follow(created.request_id);
    } catch (e) {
      fileProblem.textContent = `Could not file the request: ${e.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  await refresh();
  root.append(
    el("section", { class: "panel", "aria-labelledby": "gdpr-file-title" },
      el("h2", { id: "gdpr-file-title", text: "File a forget request" }),
      el("p", { class: "muted", text: "Suppression takes effect at once; erasure runs store by store. The user id is sent once and not shown again." }),
      fileForm, filed, fileProblem),
    el("h2", { text: "Requests" }), filterForm, summary, list);
  return root;
}
