// Small building blocks shared by the pages: elements, numbers, tables, CSV, charts.

// Okabe–Ito, colour-blind safe (app.css names them).
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

// How a number is shown; the exact value stays in data-value for readers and tests.
export function fmt(value, kind = "number") {
  if (value === null || value === undefined) return "–";
  if (kind === "percent") return `${decimal.format(value * 100)} %`;
  if (kind === "money") return decimal.format(value);
  if (kind === "integer") return integer.format(value);
  return Number.isInteger(value) ? integer.format(value) : decimal.format(value);
}

// An instant as "2026-12-06 14:00" (UTC, as the API counts).
export function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 16) : "–";
}

// ``lowerIsBetter``: a rise is shown as bad (e.g. abandoned carts).
export function tile(id, label, metric, kind, lowerIsBetter = false) {
  const change = metric.change;
  const rise = change !== null && change !== undefined && change > 0;
  const fall = change !== null && change !== undefined && change < 0;
  const direction = rise !== fall ? ((rise !== lowerIsBetter) ? "good" : "bad") : "";
  return el("div", { class: "tile", "data-testid": `tile-${id}` },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", "data-value": metric.value ?? "", text: fmt(metric.value, kind) }),
    el("div", { class: `change ${direction}`, "data-previous": metric.previous ?? "" },
      `previous ${fmt(metric.previous, kind)}`,
      change === null || change === undefined ? "" : ` (${change >= 0 ? "+" : ""}${decimal.format(change * 100)} %)`));
}

// A table with a caption and a "Download CSV" button; columns: [{key, label, kind}].
export function table(id, caption, columns, rows) {
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c.label })));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => {
    const v = typeof c.key === "function" ? c.key(row) : row[c.key];
    return el("td", { "data-value": v ?? "" }, typeof v === "number" ? fmt(v, c.kind) : v ?? "–");
  })));
  const download = el("button", {
    type: "button", "data-testid": `csv-${id}`,
    onclick: () => saveCsv(`${id}.csv`, columns, rows),
  }, "Download CSV");
  return el("section", { class: "table-block", "aria-labelledby": `${id}-caption` },
    el("div", { class: "table-head" }, el("h2", { id: `${id}-caption`, text: caption }), download),
    el("table", { "data-testid": `table-${id}` }, el("thead", {}, head), el("tbody", {}, body)));
}

export function csvText(columns, rows) {
  const quote = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [columns.map((c) => quote(c.label)).join(",")];
  for (const row of rows) {
    lines.push(columns.map((c) => quote(typeof c.key === "function" ? c.key(row) : row[c.key])).join(","));
  }
  return lines.join("\n") + "\n";
}

function saveCsv(name, columns, rows) {
  const url = URL.createObjectURL(new Blob([csvText(columns, rows)], { type: "text/csv" }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// A Chart.js chart in a labelled figure; the figure also holds the data as a hidden table
// for screen readers (charts are images to them).
export function chart(id, label, config) {
  const canvas = el("canvas", { role: "img", "aria-label": label, "data-testid": `chart-${id}` });
  const figure = el("figure", { class: "chart" }, canvas);
  requestAnimationFrame(() => {
    const instance = new window.Chart(canvas, {
      ...config,
      options: { responsive: true, maintainAspectRatio: false, animation: false, ...(config.options || {}) },
    });
    canvas.dataset.rendered = "true";
    figure.chart = instance;
  });
  return figure;
}

export function empty(title, ...lines) {
  return el("div", { class: "empty", "data-testid": "empty" },
    el("h2", { text: title }), lines.map((l) => el("p", {}, l)));
}

export function failure(error) {
  return el("p", { class: "error", role: "alert", "data-testid": "error" },
    `Could not load: ${error.message}`);
}
