// The pages of the dashboard, in navigation order. A plane adds its page here (id, title,
// the permission a credential needs to see it, load(params, go) → Node); the navigation shows
// a credential only the pages its permissions allow (GET /api/v1/me).
import * as funnel from "./funnel.js";
import * as gdpr from "./gdpr.js";
import * as model from "./model.js";
import * as overview from "./overview.js";
import * as quality from "./quality.js";
import * as revenue from "./revenue.js";

export const PAGES = [
  { id: "overview", title: "Overview", permission: "analytics:read", load: overview.load },
  { id: "funnel", title: "Funnel", permission: "analytics:read", load: funnel.load },
  { id: "revenue", title: "Revenue", permission: "analytics:read", load: revenue.load },
  { id: "model", title: "Model performance", permission: "analytics:read", load: model.load },
  { id: "quality", title: "Data quality", permission: "config:read", load: quality.load },
  { id: "gdpr", title: "GDPR", permission: "gdpr:manage", load: gdpr.load },
];
