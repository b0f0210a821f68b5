// The pages of the dashboard, in navigation order. A plane adds its page here (id, title,
// load(params, go) → Node); the data-quality and GDPR pages of later planes go after these.
import * as funnel from "./funnel.js";
import * as model from "./model.js";
import * as overview from "./overview.js";
import * as revenue from "./revenue.js";

export const PAGES = [
  { id: "overview", title: "Overview", load: overview.load },
  { id: "funnel", title: "Funnel", load: funnel.load },
  { id: "revenue", title: "Revenue", load: revenue.load },
  { id: "model", title: "Model performance", load: model.load },
];
