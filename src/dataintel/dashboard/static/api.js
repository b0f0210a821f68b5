// The public API, called with the signed-in credential (API key or JWT) as a Bearer token.
const KEY = "dataintel.credential";
const PROJECT = "dataintel.project";

export const session = {
  get credential() { return sessionStorage.getItem(KEY); },
  set credential(v) { v ? sessionStorage.setItem(KEY, v) : sessionStorage.removeItem(KEY); },
  get project() { return sessionStorage.getItem(PROJECT); },
  set project(v) { v ? sessionStorage.setItem(PROJECT, v) : sessionStorage.removeItem(PROJECT); },
  clear() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(PROJECT); },
};

// The signed-in credential's permissions (GET /api/v1/me): pages offer only the actions it
// may take (the service checks every call anyway).
export const granted = new Set();

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function url(path, params, project) {
  const u = new URL(path, location.origin);
  if (project && session.project) u.searchParams.set("project_id", session.project);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, item);
  }
  return u;
}

async function call(method, target, credential, body) {
  const headers = { Authorization: `Bearer ${credential || session.credential}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

// GET path?params (project_id added for project-scoped routes); returns parsed JSON.
export function get(path, params = {}, { project = true, credential } = {}) {
  return call("GET", url(path, params, project), credential);
}

// POST a JSON body to path (project_id added for project-scoped routes); returns parsed JSON.
export function post(path, body, { project = true } = {}) {
  return call("POST", url(path, {}, project), undefined, body);
}
