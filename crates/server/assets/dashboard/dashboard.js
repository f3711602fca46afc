// The Tephra dashboard: hash-routed pages over the HTTP API, charts drawn by the
// vendored uPlot, interval charts as inline SVG. No framework, no build step.
//
// Every page renders into a detached element that replaces the current page
// once complete, then its charts are created (they need their final width).
// `document.body.dataset.ready` is "true" once a page is on screen, and
// `window.tephraCharts` holds the uPlot instances on it, for the browser tests.

import { api, apiOrNull, describe, enc, h, itemsById, num, onKeyChange, pct, svg, when } from "./api.js";

/** How often live pages (overview, experiments) reload their data. */
const REFRESH_MS = 5000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

window.tephraCharts = [];
const view = { token: 0, timer: null, interval: "hour", historyType: "" };

/** Pattern on the hash path, page, whether the page refreshes itself. */
const ROUTES = [
  [/^(overview)?$/, overview, true],
  [/^experiments$/, experimentList, true],
  [/^experiments\/(.+)$/, experimentPage, true],
  [/^models$/, models, false],
  [/^users(?:\/(.+))?$/, userPage, false],
  [/^items(?:\/(.+))?$/, itemPage, false],
];

function resolve() {
  const path = location.hash.replace(/^#\/?/, "");
  const name = path.split("/")[0] || "overview";
  for (const [pattern, page, live] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    try {
      const args = match.slice(1).map((a) => (a === undefined ? undefined : decodeURIComponent(a)));
      return { page, live, name, args: page === overview ? [] : args };
    } catch {
      break;
    }
  }
  return { page: notFound, live: false, name, args: [path] };
}

/** Renders the page the hash names; `refresh` keeps the ready flag and scroll position. */
async function render(refresh = false) {
  const token = ++view.token;
  clearTimeout(view.timer);
  const route = resolve();
  if (!refresh) {
    document.body.dataset.ready = "false";
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.dataset.page === route.name);
    }
  }
  const page = h("div", { class: "page", dataset: { page: route.name } });
  const pending = [];
  const ctx = {
    chart: (el, opts, data) => pending.push({ el, opts, data }),
    rerender: () => render(true),
  };
  try {
    await route.page(page, ctx, ...route.args);
  } catch (e) {
    page.append(errorBox(e));
  }
  if (token !== view.token) return; // a newer render took over
  const scroll = window.scrollY;
  for (const chart of window.tephraCharts) chart.destroy();
  window.tephraCharts.length = 0;
  document.getElementById("main").replaceChildren(page);
  for (const { el, opts, data } of pending) {
    try {
      const width = Math.max(280, el.clientWidth || 600);
      window.tephraCharts.push(new uPlot({ width, height: 240, ...opts }, data, el));
    } catch (e) {
      el.replaceChildren(errorBox(e));
    }
  }
  if (refresh) window.scrollTo(0, scroll);
  document.body.dataset.ready = "true";
  const live = document.getElementById("live");
  if (route.live) {
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    view.timer = setTimeout(() => render(true), REFRESH_MS);
  } else {
    live.textContent = "";
  }
}

window.addEventListener("hashchange", () => render(false));
onKeyChange(() => render(false));
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const chart of window.tephraCharts) {
      const width = chart.root.parentElement?.clientWidth;
      if (width) chart.setSize({ width: Math.max(280, width), height: chart.height });
    }
  }, 150);
});
window.addEventListener("unhandledrejection", (event) => flash(describe(event.reason)));
render(false);

// ---------------------------------------------------------------- helpers

/** Appends a titled section and fills it; an error is shown in the section. */
function section(parent, title, fill, id) {
  const body = h("div", { class: "body" });
  parent.append(h("section", { id }, h("h2", {}, title), body));
  return (async () => {
    try {
      await fill(body);
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  })();
}

function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, describe(error));
}

function noData(text = "No data yet.") {
  return h("p", { class: "no-data muted" }, text);
}

/** A message above the page that survives refreshes until dismissed. */
function flash(text, kind = "error") {
  const box = document.getElementById("flash") ?? h("div", { id: "flash" });
  if (!box.isConnected) document.getElementById("main").before(box);
  box.replaceChildren(
    h("div", { class: kind }, text, " ", h("button", { onclick: () => box.replaceChildren() }, "dismiss")),
  );
}

/** A table; a row is an array of cells or `{attrs, cells}`. */
function table(headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h(
      "tbody",
      {},
      rows.map((row) => {
        const { attrs: rowAttrs = {}, cells } = Array.isArray(row) ? { cells: row } : row;
        return h("tr", rowAttrs, cells.map((c) => h("td", {}, c)));
      }),
    ),
  );
}

function link(hash, text) {
  return h("a", { href: hash }, text);
}

function itemLink(id, item) {
  const title = item?.title;
  return h("a", { href: `#/items/${enc(id)}` }, title || id, title ? h("span", { class: "muted small" }, ` ${id}`) : "");
}

function labels(values) {
  return h("span", { class: "labels" }, (values ?? []).map((v) => h("span", { class: "label" }, v)));
}

/** "p = 0.042", "p < 0.001" or "p = —". */
function pval(p) {
  if (p === null || p === undefined) return "p = —";
  return p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`;
}

function interval(lo, hi, fmt) {
  return lo === null || lo === undefined ? "—" : `[${fmt(lo)}, ${fmt(hi)}]`;
}

function card(label, value, note) {
  return h("div", { class: "card" }, h("div", { class: "muted small" }, label), h("div", { class: "value" }, value), note ? h("div", { class: "muted small" }, note) : "");
}

/**
 * uPlot options for series over time (x in Unix seconds). `sparse` series
 * (CTR, NDCG: null where there is nothing to measure) get their points drawn
 * and their gaps bridged, or a lone value would be invisible.
 */
function timeSeries(series, yFormat = (v) => num(v, Number.isInteger(v) ? 0 : 1), sparse = false) {
  return {
    series: [
      {},
      ...series.map((s, i) => ({
        label: s,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        spanGaps: sparse,
        points: sparse ? { show: true, size: 6, fill: COLORS[i % COLORS.length] } : { size: 5 },
        value: (u, v) => (v === null || v === undefined ? "—" : yFormat(v)),
      })),
    ],
    axes: [{}, { size: 64, values: (u, vals) => vals.map(yFormat) }],
  };
}

function seconds(rfc3339) {
  return Date.parse(rfc3339) / 1000;
}

function searchForm(kind, placeholder, value) {
  const input = h("input", { type: "search", name: "id", placeholder, value: value ?? "" });
  return h(
    "form",
    {
      class: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const id = input.value.trim();
        if (id) location.hash = `#/${kind}/${enc(id)}`;
      },
    },
    input,
    h("button", { type: "submit" }, "Show"),
  );
}

/** A table of recommended items with their explanations; `forUser` mentions the history used. */
async function recommendationTable(answer, forUser) {
  if (!answer.items.length) return noData("Nothing to recommend.");
  const items = await itemsById(answer.items.map((r) => r.id));
  const contributions = (c) =>
    Object.entries(c ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v >= 0 ? "+" : ""}${v.toFixed(3)}`)
      .join(", ");
  const explain = answer.explain;
  return h(
    "div",
    {},
    explain
      ? h(
          "p",
          { class: "muted" },
          `Scene ${answer.scene}, ranked by ${explain.ranker}`,
          explain.model ? `; model ${explain.model}${explain.retrieval ? ` (${explain.retrieval} retrieval)` : ""}` : "; no model",
          forUser ? `; ${explain.history_events} events in the history.` : ".",
        )
      : "",
    table(
      ["#", "Item", "Score", "Source", "Sources", "Contributions", "Placement"],
      answer.items.map((r, i) => ({
        attrs: { class: "rec", dataset: { item: r.id } },
        cells: [
          String(i + 1),
          itemLink(r.id, items.get(r.id)),
          num(r.score, 3),
          r.source,
          (r.explain?.sources ?? []).join(", "),
          contributions(r.explain?.contributions),
          r.explain?.placement ?? "",
        ],
      })),
      { class: "numeric-3" },
    ),
  );
}

// ---------------------------------------------------------------- overview

async function overview(root, ctx) {
  const iv = view.interval;
  const picker = h(
    "select",
    {
      name: "interval",
      onchange: (event) => {
        view.interval = event.target.value;
        ctx.rerender();
      },
    },
    ["hour", "day"].map((v) => h("option", { value: v, selected: v === iv }, `by ${v}`)),
  );
  root.append(h("div", { class: "heading" }, h("h1", {}, "Overview"), picker));
  const cards = h("div", { class: "cards", id: "coverage" });
  const grid = h("div", { class: "grid" });
  root.append(cards, grid);
  const byScene = apiOrNull(`/v1/analytics/ctr?by=scene&interval=${iv}`);
  const ctrTable = (by, label) => async (body) => {
    const data = by === "scene" ? await byScene : await apiOrNull(`/v1/analytics/ctr?by=${by}&interval=${iv}`);
    if (!data?.rows?.length) return body.replaceChildren(noData());
    body.replaceChildren(
      table(
        [label, "Impressions", "Clicks", "CTR", "95% interval"],
        data.rows.map((r) => ({
          attrs: { dataset: { key: r.key ?? "" } },
          cells: [r.key ?? "(none)", num(r.impressions), num(r.clicks), pct(r.ctr, 2), interval(r.ci_low, r.ci_high, (v) => pct(v, 2))],
        })),
        { class: "numeric" },
      ),
    );
  };
  await Promise.all([
    (async () => {
      try {
        const c = await apiOrNull("/v1/analytics/coverage");
        if (!c) return cards.replaceChildren(noData("No coverage figures yet."));
        cards.replaceChildren(
          card("Catalogue items", num(c.catalogue_items)),
          card("Items recommended", num(c.recommended_items)),
          card("Items shown", num(c.impressed_items)),
          card("Catalogue coverage", pct(c.coverage), "share of the catalogue shown to users"),
        );
      } catch (e) {
        cards.replaceChildren(errorBox(e));
      }
    })(),
    section(
      grid,
      "Events over time",
      async (body) => {
        const data = await apiOrNull(`/v1/analytics/events?interval=${iv}`);
        if (!data?.buckets?.length || !data.types?.length) return body.replaceChildren(noData());
        const xs = data.buckets.map((b) => seconds(b.start));
        const ys = data.types.map((t) => data.buckets.map((b) => b.counts?.[t] ?? 0));
        const el = h("div", { class: "chart" });
        body.replaceChildren(el);
        ctx.chart(el, timeSeries(data.types), [xs, ...ys]);
      },
      "events-chart",
    ),
    section(
      grid,
      "Click-through rate over time",
      async (body) => {
        const data = await byScene;
        const series = data?.series ?? [];
        if (!series.some((b) => b.impressions > 0)) return body.replaceChildren(noData());
        const el = h("div", { class: "chart" });
        body.replaceChildren(el);
        ctx.chart(el, timeSeries(["CTR"], (v) => pct(v, 1), true), [series.map((b) => seconds(b.start)), series.map((b) => b.ctr)]);
      },
      "ctr-chart",
    ),
    section(
      grid,
      "Users per day: new and returning",
      async (body) => {
        // Per day whatever the picker says: "returning" means seen on an earlier day.
        const data = await apiOrNull("/v1/analytics/users?interval=day");
        if (!data?.buckets?.length) return body.replaceChildren(noData());
        const b = data.buckets;
        const el = h("div", { class: "chart" });
        body.replaceChildren(el);
        ctx.chart(el, timeSeries(["active", "new", "returning"]), [
          b.map((x) => seconds(x.start)),
          b.map((x) => x.active),
          b.map((x) => x.new),
          b.map((x) => x.returning),
        ]);
      },
      "users-chart",
    ),
    section(
      grid,
      "Most clicked items",
      async (body) => {
        const data = await apiOrNull("/v1/analytics/top-items?type=click&n=10");
        if (!data?.items?.length) return body.replaceChildren(noData());
        body.replaceChildren(
          table(
            ["#", "Item", "Clicks"],
            data.items.map((it, i) => [String(i + 1), itemLink(it.id, it), num(it.count)]),
            { class: "numeric-3" },
          ),
        );
      },
      "top-items",
    ),
    section(grid, "CTR by scene", ctrTable("scene", "Scene"), "ctr-scene"),
    section(grid, "CTR by source", ctrTable("source", "Source"), "ctr-source"),
    section(grid, "CTR by experiment variant", ctrTable("variant", "Variant"), "ctr-variant"),
  ]);
}

// ---------------------------------------------------------------- experiments

function statusBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

/** Stop for a running experiment, Start (or restart) for the others. */
function startStop(exp, ctx) {
  const action = exp.status === "running" ? "stop" : "start";
  const button = h(
    "button",
    {
      class: `action ${action}`,
      onclick: async () => {
        button.disabled = true;
        try {
          await api(`/v1/experiments/${enc(exp.name)}/${action}`, { method: "POST" });
        } catch (e) {
          flash(`Could not ${action} ${exp.name}: ${describe(e)}`);
        }
        ctx.rerender();
      },
    },
    action === "start" ? "Start" : "Stop",
  );
  return button;
}

async function experimentList(root, ctx) {
  root.append(h("h1", {}, "Experiments"));
  const data = await apiOrNull("/v1/experiments");
  const list = data?.experiments ?? [];
  if (!list.length) {
    root.append(noData("No experiments yet: create one with POST /v1/experiments."));
    return;
  }
  root.append(
    table(
      ["Name", "Scene", "Status", "Control", "Variants", "Created", "Started", "Stopped", ""],
      list.map((x) => ({
        attrs: { dataset: { experiment: x.name } },
        cells: [
          link(`#/experiments/${enc(x.name)}`, x.name),
          x.scene,
          statusBadge(x.status),
          x.control ?? "",
          (x.variants ?? []).map((v) => v.name).join(", "),
          when(x.created_at),
          when(x.started_at),
          when(x.stopped_at),
          startStop(x, ctx),
        ],
      })),
      { id: "experiments" },
    ),
  );
}

/** The metrics of an experiment's results: field, label, format. */
const METRICS = [
  ["ctr", "CTR", (v) => pct(v, 2)],
  ["conversion", "Conversion", (v) => pct(v, 2)],
  ["revenue_per_user", "Revenue / user", (v) => num(v, 2)],
  ["dwell_seconds", "Dwell (s)", (v) => num(v, 1)],
];

function signed(fmt) {
  return (v) => (v > 0 ? "+" : "") + fmt(v);
}

function estimateCell(estimate, versus, fmt, isControl) {
  if (!estimate) return h("span", { class: "muted" }, "too little data");
  return [
    h("div", {}, fmt(estimate.value), " ", h("span", { class: "ci" }, interval(estimate.ci_low, estimate.ci_high, fmt))),
    isControl
      ? h("div", { class: "muted small" }, "control")
      : versus
        ? h(
            "div",
            { class: `small ${versus.p_value < 0.05 ? "significant" : "muted"}` },
            `Δ ${signed(fmt)(versus.difference)}, ${pval(versus.p_value)}`,
          )
        : h("div", { class: "muted small" }, "vs control: too little data"),
  ];
}

function ratioCell(ratio) {
  if (!ratio) return h("span", { class: "muted" }, "too little data");
  const fmt = (x) => num(x, 3);
  return [fmt(ratio.value), " ", h("span", { class: "ci" }, interval(ratio.ci_low, ratio.ci_high, fmt))];
}

function variantTable(results) {
  return table(
    ["Variant", "Share", "Users", "Impressions", "Clicks", ...METRICS.map((m) => m[1]), "CTR ratio vs control"],
    results.variants.map((v) => {
      const isControl = v.name === results.control;
      return {
        attrs: { class: "variant", dataset: { variant: v.name } },
        cells: [
          [v.name, isControl ? h("span", { class: "badge control" }, "control") : ""],
          num(v.weight, 2),
          num(v.users),
          num(v.impressions),
          num(v.clicks),
          ...METRICS.map(([field, , fmt]) => estimateCell(v[field], v.vs_control?.[field], fmt, isControl)),
          isControl ? "—" : ratioCell(v.ctr_ratio),
        ],
      };
    }),
    { id: "variants", class: "numeric" },
  );
}

/** Horizontal whiskers: each variant's estimate and interval, the control's value as a dashed line. */
function intervalChart(title, variants, pick, fmt, reference) {
  const rows = variants.map((v, i) => ({ name: v.name, e: pick(v), color: COLORS[i % COLORS.length] })).filter((r) => r.e);
  if (!rows.length) return null;
  let lo = Math.min(...rows.map((r) => r.e.ci_low ?? r.e.value));
  let hi = Math.max(...rows.map((r) => r.e.ci_high ?? r.e.value));
  if (reference !== null && reference !== undefined) {
    lo = Math.min(lo, reference);
    hi = Math.max(hi, reference);
  }
  const pad = hi > lo ? (hi - lo) * 0.08 : Math.abs(hi) * 0.1 || 1;
  lo -= pad;
  hi += pad;
  const W = 560, L = 130, R = 24, ROW = 30, TOP = 8;
  const H = TOP + rows.length * ROW + 26;
  const x = (v) => L + ((v - lo) / (hi - lo)) * (W - L - R);
  const chart = svg("svg", { class: "interval-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const bottom = TOP + rows.length * ROW;
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    chart.append(
      svg("line", { x1: x(v), x2: x(v), y1: TOP, y2: bottom + 4, class: "grid" }),
      svg("text", { x: x(v), y: bottom + 18, "text-anchor": "middle", class: "tick" }, fmt(v)),
    );
  }
  if (reference !== null && reference !== undefined) {
    chart.append(svg("line", { x1: x(reference), x2: x(reference), y1: TOP, y2: bottom, class: "reference" }));
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW + ROW / 2;
    const a = x(r.e.ci_low ?? r.e.value);
    const b = x(r.e.ci_high ?? r.e.value);
    chart.append(
      svg(
        "g",
        { class: "whisker", "data-variant": r.name },
        svg("title", {}, `${r.name}: ${fmt(r.e.value)} ${interval(r.e.ci_low, r.e.ci_high, fmt)}`),
        svg("text", { x: L - 10, y: y + 4, "text-anchor": "end" }, r.name),
        svg("line", { x1: a, x2: b, y1: y, y2: y, stroke: r.color }),
        svg("line", { x1: a, x2: a, y1: y - 7, y2: y + 7, stroke: r.color }),
        svg("line", { x1: b, x2: b, y1: y - 7, y2: y + 7, stroke: r.color }),
        svg("circle", { cx: x(r.e.value), cy: y, r: 5, fill: r.color }),
      ),
    );
  });
  return h("figure", { class: "interval" }, h("figcaption", {}, title), chart);
}

function srmBox(srm) {
  if (!srm) return noData("No assignment counts yet.");
  const expected = (srm.expected ?? []).map((v) => num(v, 0)).join(" / ");
  const text = `users per variant ${(srm.observed ?? []).map((v) => num(v)).join(" / ")} against ${expected} expected from the weights (χ² = ${num(srm.chi_square, 2)}, ${pval(srm.p_value)}).`;
  return srm.mismatch
    ? h(
        "div",
        { id: "srm", class: "srm warn", role: "alert", dataset: { mismatch: "true" } },
        h("strong", {}, "⚠ Sample ratio mismatch: "),
        text,
        " The split of users does not follow the weights, so the comparison is not trustworthy until the cause is found.",
      )
    : h("div", { id: "srm", class: "srm ok", dataset: { mismatch: "false" } }, h("strong", {}, "Sample ratio check passed: "), text);
}

async function experimentPage(root, ctx, name) {
  const [exp, results] = await Promise.all([
    api(`/v1/experiments/${enc(name)}`),
    apiOrNull(`/v1/experiments/${enc(name)}/results`),
  ]);
  root.append(
    h("p", {}, link("#/experiments", "← All experiments")),
    h("div", { class: "heading" }, h("h1", {}, exp.name), statusBadge(exp.status), startStop(exp, ctx)),
    h(
      "p",
      { class: "muted" },
      `Scene ${exp.scene} · control ${exp.control} · created ${when(exp.created_at)}`,
      exp.started_at ? ` · started ${when(exp.started_at)}` : "",
      exp.stopped_at ? ` · stopped ${when(exp.stopped_at)}` : "",
    ),
  );
  if (!results?.variants?.length) {
    root.append(noData("No results yet: variants fill up as users are assigned and events arrive."));
  } else {
    root.append(srmBox(results.srm));
    const variants = results.variants;
    const control = variants.find((v) => v.name === results.control);
    await section(root, "Variants", (body) => body.replaceChildren(variantTable(results)), "variant-results");
    await section(
      root,
      "Estimates with 95% intervals",
      (body) => {
        const charts = METRICS.map(([field, label, fmt]) =>
          intervalChart(label, variants, (v) => v[field], fmt, control?.[field]?.value),
        );
        charts.splice(1, 0, intervalChart("CTR ratio vs control", variants, (v) => v.ctr_ratio, (v) => num(v, 2), 1));
        charts.splice(0, charts.length, ...charts.filter(Boolean));
        body.replaceChildren(...(charts.length ? charts : [noData("Too little data for intervals yet.")]));
        body.classList.add("intervals");
      },
      "intervals",
    );
  }
  await section(
    root,
    "Definition",
    (body) =>
      body.replaceChildren(
        table(
          ["Variant", "Weight", "Overrides"],
          (exp.variants ?? []).map((v) => [v.name, num(v.weight, 2), h("code", {}, JSON.stringify(v.overrides ?? {}))]),
        ),
      ),
    "definition",
  );
}

// ---------------------------------------------------------------- models

async function models(root, ctx) {
  const train = h(
    "button",
    {
      class: "action",
      onclick: async () => {
        train.disabled = true;
        train.textContent = "Training…";
        try {
          const outcome = await api("/v1/admin/train", { method: "POST", body: {} });
          flash(
            `Trained ${outcome.candidate?.spec?.kind ?? "a model"}: NDCG@10 ${num(outcome.candidate_holdout?.ndcg_at_10, 4)}, ${outcome.promoted ? "promoted" : "not promoted"}.`,
            "info",
          );
        } catch (e) {
          flash(`Training failed: ${describe(e)}`);
        }
        ctx.rerender();
      },
    },
    "Train now",
  );
  root.append(h("div", { class: "heading" }, h("h1", {}, "Models"), train));
  const [model, history] = await Promise.all([apiOrNull("/v1/model"), apiOrNull("/v1/model/history")]);
  await section(
    root,
    "Served model",
    (body) => {
      if (!model) return body.replaceChildren(noData("No model has been trained yet."));
      const { kind, ...params } = model.recipe?.spec ?? {};
      const rows = [
        ["Model", kind ?? "?"],
        ["Parameters", h("code", {}, JSON.stringify(params))],
        ["History weighting", h("code", {}, JSON.stringify(model.recipe?.weighting ?? {}))],
        ["Trained", `${when(model.trained_at)} (${model.origin ?? "trained"})`],
        ["Trained on", `${num(model.n_events)} events by ${num(model.n_users)} users over ${num(model.n_items)} items`],
        ["Holdout NDCG@10", num(model.holdout?.ndcg_at_10, 4)],
        ["Holdout recall@20", num(model.holdout?.recall_at_20, 4)],
        ["Holdout users", num(model.holdout?.users)],
        ["Retrieval", model.retrieval ?? "whole catalogue"],
        ["Items folded in since", num(model.folded_in_items)],
      ];
      body.replaceChildren(h("dl", { id: "model" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    },
    "served-model",
  );
  await section(
    root,
    "Training runs",
    (body) => {
      const runs = [...(history?.runs ?? [])].sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
      if (!runs.length) return body.replaceChildren(noData("No training runs yet."));
      const el = h("div", { class: "chart" });
      const fmt4 = (v) => num(v, 4);
      body.replaceChildren(
        el,
        table(
          ["#", "Finished", "Model", "Promoted", "NDCG@10", "Served NDCG@10", "Recall@20", "Events", "Time"],
          runs
            .map((r, i) => ({
              attrs: { class: "run" },
              cells: [
                String(i + 1),
                when(r.finished_at),
                // The contract said `recipe`; the server answers the run's `candidate` recipe.
                (r.recipe ?? r.candidate)?.spec?.kind ?? "?",
                r.promoted ? "yes" : "no",
                fmt4(r.candidate_holdout?.ndcg_at_10),
                fmt4(r.current_holdout?.ndcg_at_10),
                fmt4(r.candidate_holdout?.recall_at_20),
                num(r.n_events),
                `${num(r.elapsed_ms)} ms`,
              ],
            }))
            .reverse(),
          { id: "runs" },
        ),
      );
      const opts = timeSeries(["candidate NDCG@10", "served model NDCG@10"], fmt4, true);
      // Runs are numbered 1..n: half a run of margin, integer ticks only.
      opts.scales = { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } };
      opts.axes[0] = {
        incrs: [1, 2, 5, 10, 20, 50, 100],
        values: (u, vals) => vals.map((v) => (Number.isInteger(v) && v >= 1 && v <= runs.length ? `#${v}` : "")),
      };
      ctx.chart(el, opts, [
        runs.map((_, i) => i + 1),
        runs.map((r) => r.candidate_holdout?.ndcg_at_10 ?? null),
        runs.map((r) => r.current_holdout?.ndcg_at_10 ?? null),
      ]);
    },
    "history",
  );
}

// ---------------------------------------------------------------- users and items

async function userPage(root, ctx, id) {
  root.append(h("div", { class: "heading" }, h("h1", {}, id ? `User ${id}` : "Users"), searchForm("users", "user id", id)));
  if (!id) {
    await section(root, "Users", async (body) => {
      const page = await api("/v1/users?limit=50");
      if (!page.users.length) return body.replaceChildren(noData("No users yet."));
      body.replaceChildren(h("ul", { class: "columns" }, page.users.map((u) => h("li", {}, link(`#/users/${enc(u.id)}`, u.id)))));
    });
    return;
  }
  await Promise.all([
    section(
      root,
      "History (latest 50 events)",
      async (body) => {
        // Impressions outnumber everything else: a type filter shows what the user did.
        const type = view.historyType;
        const [{ events }, configured] = await Promise.all([
          api(`/v1/users/${enc(id)}/events?limit=50${type ? `&type=${enc(type)}` : ""}`),
          apiOrNull("/v1/analytics/events?interval=day").catch(() => null),
        ]);
        const types = configured?.types ?? [];
        const picker = h(
          "select",
          {
            name: "type",
            onchange: (event) => {
              view.historyType = event.target.value;
              ctx.rerender();
            },
          },
          h("option", { value: "" }, "all types"),
          types.map((t) => h("option", { value: t, selected: t === type }, t)),
        );
        if (!events.length) return body.replaceChildren(types.length ? picker : "", noData("No events."));
        const items = await itemsById(events.map((e) => e.item_id));
        body.replaceChildren(
          types.length ? h("p", {}, "Show ", picker) : "",
          table(
            ["Time", "Type", "Item", "Value", "Scene", "Position", "Request"],
            events.map((e) => ({
              attrs: { class: "event", dataset: { type: e.type } },
              cells: [
                when(e.timestamp),
                e.type,
                itemLink(e.item_id, items.get(e.item_id)),
                num(e.value, e.value % 1 ? 2 : 0),
                e.scene ?? "",
                e.position ?? "",
                h("code", { class: "small" }, e.request_id ?? ""),
              ],
            })),
          ),
        );
      },
      "history",
    ),
    section(
      root,
      "Recommendations now",
      async (body) => {
        body.replaceChildren(await recommendationTable(await api(`/v1/recommend/${enc(id)}?n=10&explain=true`), true));
      },
      "recommendations",
    ),
  ]);
}

async function itemPage(root, ctx, id) {
  root.append(h("div", { class: "heading" }, h("h1", {}, id ? "Item" : "Items"), searchForm("items", "item id", id)));
  if (!id) {
    await section(root, "Catalogue (first 50 items)", async (body) => {
      const page = await api("/v1/items?limit=50");
      if (!page.items.length) return body.replaceChildren(noData("No items yet."));
      body.replaceChildren(table(["Item", "Categories"], page.items.map((it) => [itemLink(it.id, it), labels(it.categories)])));
    });
    return;
  }
  await Promise.all([
    section(
      root,
      id,
      async (body) => {
        const item = await api(`/v1/items/${enc(id)}`);
        const facts = [
          ["Categories", labels(item.categories)],
          ["Tags", labels(item.tags)],
          ["Published", when(item.published_at)],
          ["Expires", when(item.expires_at)],
          ["Hidden", item.hidden ? "yes" : "no"],
          ["Attributes", h("code", {}, JSON.stringify(item.attributes ?? {}))],
        ];
        body.replaceChildren(
          h("h3", { class: "title" }, item.title || "(no title)"),
          item.text ? h("p", { class: "text" }, item.text) : "",
          h("dl", { id: "item" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        );
      },
      "item",
    ),
    section(
      root,
      "Similar items",
      async (body) => {
        body.replaceChildren(await recommendationTable(await api(`/v1/items/${enc(id)}/similar?n=10&explain=true`), false));
      },
      "similar",
    ),
  ]);
}

async function notFound(root, ctx, path) {
  root.append(h("h1", {}, "Not found"), h("p", {}, `No dashboard page is at #/${path}. `, link("#/overview", "Overview")));
}
