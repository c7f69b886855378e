// The central view: the classroom appliances that push to this instance, with their lag, and one
// appliance's classes, problems and scores per class and problem (a heat grid and a table).
import "../app.js";
import { api } from "../api.js";
import { $, h, hideError, replace, showError, when } from "../dom.js";

const HOUR = 3600;
const DAY = 24 * HOUR;

function duration(s) {
  if (s === null || s === undefined) return "never";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < HOUR) return `${Math.round(s / 60)} min`;
  if (s < DAY) return `${Math.floor(s / HOUR)} h ${Math.round((s % HOUR) / 60)} min`;
  return `${Math.floor(s / DAY)} d ${Math.round((s % DAY) / HOUR)} h`;
}

// Fresh within the hour, stale within the day, old past it: the bar's colour.
const lagState = (s) => (s === null ? "never" : s < HOUR ? "fresh" : s < DAY ? "stale" : "old");

function bundleText(bundle) {
  if (!bundle) return "–";
  const changes = bundle.changes === null ? "full" : `${bundle.changes} changes`;
  return bundle.after_s === null ? changes : `${changes}, ${duration(bundle.after_s)} after the one before`;
}

function table(heads, rows, attrs = {}) {
  if (!rows.length) return h("p", { class: "empty-state" }, "None yet.");
  return h(
    "table",
    { class: "list", ...attrs },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        heads.map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h("tbody", {}, rows),
  );
}

function drawLagBars(appliances) {
  // Lags run from seconds to weeks: a logarithmic bar keeps both ends readable.
  const most = Math.max(60, ...appliances.map((a) => a.lag_s ?? 0));
  replace(
    $("#lag-bars"),
    appliances.map((a) =>
      h(
        "div",
        { class: "dash-bar-row", "data-appliance": a.id },
        h("span", { class: "dash-bar-label" }, a.name),
        h(
          "span",
          { class: "dash-bar-track" },
          h("span", {
            class: "dash-bar central-lag-bar",
            "data-state": lagState(a.lag_s),
            style: `width: ${a.lag_s === null ? 100 : (100 * Math.log1p(a.lag_s)) / Math.log1p(most)}%`,
          }),
        ),
        h("span", { class: "dash-bar-count" }, duration(a.lag_s)),
      ),
    ),
  );
}

function drawAppliances(appliances, chosen) {
  drawLagBars(appliances);
  const rows = appliances.map((a) =>
    h(
      "tr",
      { "data-appliance": a.id, "aria-current": a.id === chosen ? "true" : null },
      h("th", { scope: "row" }, h("a", { href: `?appliance=${a.id}`, "data-open": a.id }, a.name)),
      h("td", {}, h("code", {}, a.fingerprint)),
      h("td", {}, a.last_import_at ? when(a.last_import_at) : "never"),
      h("td", { "data-lag": a.lag_s === null ? "never" : String(a.lag_s) }, duration(a.lag_s)),
      h("td", {}, bundleText(a.last_bundle)),
      h("td", { class: "num" }, String(a.classes)),
      h("td", { class: "num" }, String(a.problems)),
      h("td", { class: "num" }, String(a.students)),
      h("td", { class: "num" }, String(a.submissions)),
      h("td", {}, a.last_submission_at ? when(a.last_submission_at) : "–"),
    ),
  );
  replace(
    $("#appliances-table"),
    appliances.length
      ? table(
          [
            "Appliance",
            "Key fingerprint",
            "Last import",
            "Lag",
            "Last bundle",
            "Classes",
            "Problems",
            "Students",
            "Submissions",
            "Last submission",
          ],
          rows,
          { id: "appliances" },
        )
      : h("p", { class: "empty-state" }, "No appliance is registered: `labrunner appliances add NAME PUBLIC-KEY`."),
  );
  for (const link of document.querySelectorAll("[data-open]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      open(Number(link.dataset.open));
    });
  }
}

const percent = (score, max) => (score === null ? null : Math.round((100 * score) / max));

function heatGrid(detail) {
  const classes = detail.class_list;
  const problems = detail.problem_list.filter((p) => detail.scores.some((s) => s.problem_id === p.id));
  if (!classes.length || !problems.length) return h("p", { class: "empty-state" }, "No problem is set in a class.");
  const cell = new Map(detail.scores.map((s) => [`${s.class_id}:${s.problem_id}`, s]));
  return h(
    "table",
    { class: "central-heat", id: "heat" },
    h("caption", { class: "visually-hidden" }, "Mean best score per class (rows) and problem (columns)"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Class"),
        problems.map((p) => h("th", { scope: "col" }, p.title)),
      ),
    ),
    h(
      "tbody",
      {},
      classes.map((c) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, c.name),
          problems.map((p) => {
            const s = cell.get(`${c.id}:${p.id}`);
            if (!s) return h("td", { class: "heat-none" }, "–");
            const pct = percent(s.mean_best, detail.max_score);
            // Red (0 %) through yellow to green (100 %); grey while nobody has a score.
            const style = pct === null ? null : `background: hsl(${Math.round(1.2 * pct)}, 70%, 82%)`;
            return h(
              "td",
              { "data-cell": `${c.id}:${p.id}`, "data-mean": pct ?? "", style },
              pct === null ? "no score" : `${pct} %`,
              h("span", { class: "heat-solved" }, `${s.solved}/${s.students} solved`),
            );
          }),
        ),
      ),
    ),
  );
}

function drawDetail(detail) {
  $("#detail").hidden = false;
  $("#detail-title").textContent = detail.name;
  $("#detail-meta").textContent =
    `Fingerprint ${detail.fingerprint} · appliance ${detail.appliance_id || "not seen yet"} · ` +
    `last import ${detail.last_import_at ? when(detail.last_import_at) : "never"} · lag ${duration(detail.lag_s)}`;
  replace($("#heat-grid"), heatGrid(detail));
  const score = (v) => (v === null ? "–" : `${v} / ${detail.max_score}`);
  replace(
    $("#scores-table"),
    table(
      ["Class", "Problem", "Students", "Attempted", "Solved", "Mean best", "Median best", "Last submission"],
      detail.scores.map((s) =>
        h(
          "tr",
          { "data-score": `${s.class_id}:${s.problem_id}` },
          h("td", {}, s.class_name),
          h("td", {}, s.problem_title),
          h("td", { class: "num" }, String(s.students)),
          h("td", { class: "num" }, String(s.attempted)),
          h("td", { class: "num" }, String(s.solved)),
          h("td", { class: "num" }, score(s.mean_best)),
          h("td", { class: "num" }, score(s.median_best)),
          h("td", {}, s.last_submission_at ? when(s.last_submission_at) : "–"),
        ),
      ),
      { id: "scores" },
    ),
  );
  replace(
    $("#classes-table"),
    table(
      ["Class", "Teacher", "Students"],
      detail.class_list.map((c) =>
        h("tr", {}, h("td", {}, c.name), h("td", {}, c.teacher || "–"), h("td", { class: "num" }, String(c.students))),
      ),
    ),
  );
  replace(
    $("#problems-table"),
    table(
      ["Problem", "Language", "Tests (visible + other)", "Changed"],
      detail.problem_list.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, p.title),
          h("td", {}, p.language || "–"),
          h("td", { class: "num" }, `${p.visible_tests} + ${p.other_tests}`),
          h("td", {}, p.updated_at ? when(p.updated_at) : "–"),
        ),
      ),
    ),
  );
}

async function open(id) {
  hideError($("#central-error"));
  history.replaceState(null, "", `?appliance=${id}`);
  for (const row of document.querySelectorAll("#appliances tbody tr")) {
    if (Number(row.dataset.appliance) === id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  try {
    drawDetail(await api("GET", `/api/admin/central/appliances/${id}`));
  } catch (error) {
    showError($("#central-error"), error);
  }
}

async function start() {
  try {
    const { appliances } = await api("GET", "/api/admin/central/appliances");
    const chosen = Number(new URLSearchParams(location.search).get("appliance")) || null;
    drawAppliances(appliances, chosen);
    if (chosen) await open(chosen);
  } catch (error) {
    showError($("#central-error"), error);
  }
}

start();
