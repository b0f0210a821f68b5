// The pages of the dashboard, in navigation order. A plane adds its page here (id, title,
// load(params, go) → Node); the data-quality and GDPR pages of later planes go after these.
import * as overview from "./overview.js";

export const PAGES = [
  { id: "overview", title: "Overview", load: overview.load },
];
