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

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// GET path?params (project_id added for project-scoped routes); returns parsed JSON.
export async function get(path, params = {}, { project = true, credential } = {}) {
  const url = new URL(path, location.origin);
  if (project && session.project) url.searchParams.set("project_id", session.project);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
  }
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${credential || session.credential}`, Accept: "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}
