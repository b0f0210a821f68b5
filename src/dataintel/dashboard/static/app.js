// The dashboard shell: sign-in, project picker, navigation and a hash router over PAGES.
import { ApiError, get, granted, session } from "./api.js";
import { el, failure } from "./ui.js";
import { PAGES } from "./pages/index.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const picker = document.getElementById("project");
const status = document.getElementById("status");
let pages = []; // the PAGES this credential's permissions allow

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { id: path || pages[0].id, params: new URLSearchParams(query || "") };
}

// What the credential may see: its projects, and its permissions (which pages to offer).
function whoami(credential) {
  return Promise.all([
    get("/api/v1/projects", {}, { project: false, credential }),
    get("/api/v1/me", {}, { project: false, credential }),
  ]);
}

export function navigate(id, params) {
  const query = params && [...params].length ? `?${params}` : "";
  location.hash = `#/${id}${query}`;
}

function signin(message) {
  nav.hidden = true;
  document.getElementById("session").hidden = true;
  const input = el("input", { id: "credential", type: "password", autocomplete: "off", required: true });
  const error = el("p", { class: "error", role: "alert", text: message || "" });
  const form = el("form", { class: "signin", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title", text: "Sign in" }),
    el("p", { class: "muted", text: "With an API key (di_…) or a JWT that can read analytics or manage GDPR requests. It is kept in this tab only." }),
    el("label", { for: "credential", text: "API key or JWT" }), input,
    el("button", { type: "submit", class: "primary", text: "Sign in" }), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const [projects, me] = await whoami(input.value.trim());
      session.credential = input.value.trim();
      start(projects, me);
    } catch (e) {
      error.textContent = e instanceof ApiError && e.status === 401
        ? "This key or token was not accepted." : `Sign-in failed: ${e.message}`;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

function start(projects, me) {
  granted.clear();
  me.permissions.forEach((p) => granted.add(p));
  pages = PAGES.filter((p) => me.permissions.includes(p.permission));
  if (!projects.length || !pages.length) {
    const why = !projects.length ? "This credential sees no project."
      : "This credential may use none of the dashboard's pages (they need analytics:read, config:read or gdpr:manage).";
    main.replaceChildren(el("p", { class: "error", role: "alert", text: why }));
    document.getElementById("session").hidden = false;
    picker.hidden = picker.labels[0].hidden = true; // only "Sign out" is left to do
    return;
  }
  picker.hidden = picker.labels[0].hidden = false;
  picker.replaceChildren(...projects.map((p) => el("option", { value: p.id, text: p.name || p.id })));
  if (!projects.some((p) => p.id === session.project)) session.project = projects[0].id;
  picker.value = session.project;
  nav.replaceChildren(...pages.map((p) => el("a", { href: `#/${p.id}`, "data-page": p.id, text: p.title })));
  nav.hidden = false;
  document.getElementById("session").hidden = false;
  render();
}

let rendering = 0;
async function render() {
  if (!session.credential) return signin();
  if (!pages.length) return; // not started yet, or nothing to show this credential
  const { id, params } = route();
  const page = pages.find((p) => p.id === id) || pages[0];
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === page.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · dataintel`;
  const ticket = ++rendering;
  main.replaceChildren(el("h1", { text: page.title }), el("p", { class: "muted", text: "Loading…" }));
  main.dataset.state = "loading";
  let content;
  try {
    content = await page.load(params, (next) => navigate(page.id, next));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { session.clear(); return signin("Your session has ended: sign in again."); }
    content = failure(e);
  }
  if (ticket !== rendering) return; // a later navigation won
  main.replaceChildren(el("h1", { text: page.title }), content);
  main.dataset.state = "ready";
  main.dataset.page = page.id;
  status.textContent = `${page.title} loaded`;
}

picker.addEventListener("change", () => { session.project = picker.value; render(); });
document.getElementById("signout").addEventListener("click", () => { session.clear(); location.hash = ""; signin(); });
window.addEventListener("hashchange", render);

(async () => {
  if (!session.credential) return signin();
  try {
    start(...await whoami());
  } catch {
    session.clear();
    signin("Your session has ended: sign in again.");
  }
})();
