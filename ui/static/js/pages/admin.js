// The live dashboard: one Server-Sent Events stream (/api/dashboard/stream) draws every figure; the
// buttons call the API and the next picture shows their effect. A teacher's stream carries only
// their classes' jobs and none of the admin's panels (the server cuts it, not this script).
import "../app.js";
import { api } from "../api.js";
import { $, busy, h, hideError, replace, showError } from "../dom.js";
import { uPlot } from "/static/vendor/uplot.js";

document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/uplot.css" }));

const isAdmin = Boolean($("#pause-button"));
const HISTORY_S = 10 * 60; // the queue chart shows the last ten minutes this tab has seen
const history = { t: [], queued: [], running: [] };
const charts = {};
let last = null;

const seconds = (s) => {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
};
const bytes = (n) => {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};

function xRange(xs, minSpan) {
  if (!xs.length) return [0, 1];
  const last = xs[xs.length - 1];
  return [Math.min(xs[0], last - Math.max(minSpan, 1)), last];
}

// `minSpan`: the least time the x axis covers (seconds), so a chart with few points is not
// stretched over a made-up range.
function chart(id, series, data, minSpan = 0) {
  const el = $(`#${id}`);
  const width = Math.max(240, el.clientWidth || 600);
  if (!charts[id]) {
    charts[id] = new uPlot(
      {
        width,
        height: 180,
        series: [{}, ...series],
        axes: [{}, { size: 50 }],
        // From the data itself: uPlot stretches a single point over a thousand days.
        scales: { x: { time: true, range: (u) => xRange(u.data[0], minSpan) } },
        legend: { show: true },
      },
      data,
      el,
    );
  } else {
    if (Math.abs(charts[id].width - width) > 20) charts[id].setSize({ width, height: 180 });
    charts[id].setData(data);
  }
}

function drawQueue(queue, at) {
  const { queued, running } = queue.by_status;
  for (const [id, value] of [
    ["#queue-queued", queued],
    ["#queue-running", running],
  ]) {
    $(id).textContent = String(value);
    $(id).dataset.value = String(value);
  }
  $("#queue-oldest").textContent = seconds(queue.oldest_wait_s);
  const most = Math.max(1, ...Object.values(queue.queued_by_priority));
  replace(
    $("#queue-bars"),
    Object.entries(queue.queued_by_priority).map(([name, count]) =>
      h(
        "div",
        { class: "dash-bar-row" },
        h("span", { class: "dash-bar-label" }, name),
        h(
          "span",
          { class: "dash-bar-track" },
          h("span", { class: "dash-bar", style: `width: ${(100 * count) / most}%`, "data-count": count }),
        ),
        h("span", { class: "dash-bar-count" }, String(count)),
      ),
    ),
  );
  history.t.push(at);
  history.queued.push(queued);
  history.running.push(running);
  while (history.t.length && history.t[0] < at - HISTORY_S) {
    for (const key of Object.keys(history)) history[key].shift();
  }
  chart(
    "queue-chart",
    [
      { label: "waiting", stroke: "#0a58ca", fill: "rgba(10, 88, 202, 0.15)", width: 2 },
      { label: "running", stroke: "#116329", width: 2 },
    ],
    [history.t, history.queued, history.running],
    60,
  );
}

async function act(button, path, body = {}) {
  hideError($("#dash-error"));
  await busy(button, async () => {
    try {
      await api("POST", path, body);
    } catch (error) {
      showError($("#dash-error"), error);
    }
  });
}

function jobButton(job, action, label) {
  const button = h("button", { type: "button", class: "small", "data-action": action, "data-job": job.id }, label);
  button.addEventListener("click", () => act(button, `/api/jobs/${job.id}/${action}`));
  return button;
}

// A row's cells as text; the row element and its buttons are kept from one picture to the next
// (only their text changes), so a click that lands while a picture arrives is not lost.
function jobCells(job) {
  return [
    `#${job.id}`,
    `${job.kind} (${job.priority})`,
    job.username,
    job.problem_title || "—",
    `${job.status}${job.infra_attempts ? ` · ${job.infra_attempts} retries` : ""}`,
    job.status === "running" ? `${seconds(job.waited_s)} / ${seconds(job.elapsed_s)}` : seconds(job.waited_s),
  ];
}

function jobRow(job) {
  const actions = h(
    "td",
    { class: "dash-actions" },
    job.status === "failed" ? null : jobButton(job, "abort", "Abort"),
    job.status === "queued" ? null : jobButton(job, "requeue", "Requeue"),
  );
  return h(
    "tr",
    { "data-job-row": job.id, "data-status": job.status },
    jobCells(job).map((text) => h("td", {}, text)),
    actions,
  );
}

function drawJobs(el, jobs, failed) {
  if (!jobs.length) {
    replace(el, h("p", { class: "empty-state" }, failed ? "None." : "Nothing is waiting or running."));
    return;
  }
  let body = $("tbody", el);
  if (!body) {
    body = h("tbody");
    const heads = ["Job", "Kind", "Who", "Problem", "Status", failed ? "Waited" : "Waited / running", ""];
    replace(
      el,
      h(
        "table",
        { class: "dash-jobs" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            heads.map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        body,
      ),
    );
  }
  const kept = new Map(Array.from(body.rows, (row) => [row.dataset.jobRow, row]));
  const rows = jobs.map((job) => {
    const row = kept.get(String(job.id));
    if (!row || row.dataset.status !== job.status) return jobRow(job); // new buttons for a new status
    jobCells(job).forEach((text, i) => {
      if (row.cells[i].textContent !== text) row.cells[i].textContent = text;
    });
    return row;
  });
  rows.forEach((row, i) => {
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
  });
  while (body.rows.length > rows.length) body.rows[rows.length].remove();
}

function drawThroughput(throughput) {
  replace(
    $("#windows-body"),
    Object.entries(throughput.windows).map(([minutes, w]) =>
      h(
        "tr",
        { "data-window": minutes },
        h("th", { scope: "row" }, `Last ${minutes} minutes`),
        h("td", {}, String(w.jobs_per_min)),
        h("td", {}, w.p50_s === null ? "–" : `${w.p50_s} s`),
        h("td", {}, w.p95_s === null ? "–" : `${w.p95_s} s`),
      ),
    ),
  );
  const s = throughput.per_minute;
  chart("rate-chart", [{ label: "jobs per minute", stroke: "#0a58ca", width: 2 }], [s.t, s.jobs]);
  chart(
    "latency-chart",
    [
      { label: "p50 (s)", stroke: "#116329", width: 2 },
      { label: "p95 (s)", stroke: "#a40e26", width: 2 },
    ],
    [s.t, s.p50_s, s.p95_s],
  );
}

function list(el, pairs) {
  replace(
    el,
    pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value === null || value === undefined ? "–" : value)]),
  );
}

// Runner hosts (runner_mode = remote). A state is told by a mark and a word as well as its colour.
const HOST_STATES = {
  up: ["●", "up"],
  engine_down: ["▲", "engine down"],
  lost: ["✕", "lost"],
  stopped: ["■", "stopped"],
};

function hostState(host) {
  const [mark, word] = HOST_STATES[host.state] || ["?", host.state];
  return h(
    "span",
    { class: "host-state", "data-state": host.state },
    h("span", { "aria-hidden": "true" }, mark),
    ` ${word}`,
  );
}

// Busy slots as the bar (one division per slot), the jobs the server has placed there as the
// lighter bar behind it: placed ahead of busy means jobs on their way to the host.
function hostLoad(host) {
  const slots = host.slots ?? 0;
  const busy = host.busy ?? 0;
  const placed = host.placed ?? 0;
  const width = (n) => `width: ${slots ? Math.min(100, (100 * n) / slots) : 0}%`;
  const text = `${busy} of ${slots} slots busy, ${placed} placed`;
  return h(
    "div",
    { class: "host-load" },
    h(
      "span",
      {
        class: "host-load-track",
        style: `--slots: ${Math.max(1, slots)}`,
        role: "meter",
        "aria-label": `Load of ${host.name}`,
        "aria-valuemin": 0,
        "aria-valuemax": slots,
        "aria-valuenow": busy,
        "aria-valuetext": text,
      },
      h("span", { class: "host-load-placed", style: width(placed) }),
      h("span", { class: "host-load-busy", style: width(busy) }),
    ),
    h("span", { class: "host-load-text", "aria-hidden": "true" }, `${busy}/${slots} busy · ${placed} placed`),
  );
}

function hostWarm(warm) {
  if (!warm) return "–";
  return `${warm.idle} idle for ${warm.users} students${warm.pooled ? ` · ${warm.pooled} pooled` : ""}`;
}

function hostRow(host) {
  const seen = host.last_seen ? new Date(host.last_seen * 1000).toLocaleString() : null;
  return h(
    "tr",
    { "data-host": host.name, "data-state": host.state },
    h("th", { scope: "row" }, host.name),
    h("td", { class: "host-region" }, host.region ?? "–"),
    h("td", { class: "host-state-cell" }, hostState(host)),
    h("td", { class: "host-load-cell" }, hostLoad(host)),
    h("td", { class: "host-warm" }, hostWarm(host.warm)),
    h("td", { class: "num host-done" }, String(host.jobs_done ?? "–")),
    h("td", { class: "host-seen", title: seen }, seen ? `${seconds(host.seconds_since_seen)} ago` : "never"),
  );
}

// What to run, word for word, when no host has reported yet.
function noHosts() {
  const code = (text) => h("code", {}, text);
  return h(
    "div",
    { class: "empty-state hosts-empty" },
    h(
      "p",
      {},
      "No runner host has reported to this server yet. On each host, ",
      code("labrunner identity"),
      " prints its key; register the host on this server with",
    ),
    h("pre", {}, code("labrunner workers add NAME KEY")),
    h(
      "p",
      {},
      "then start it on the host, with this server's key (",
      code("labrunner identity"),
      " here prints it) and the broker's runner user:",
    ),
    h(
      "pre",
      {},
      code(
        "labrunner worker --connect redis://runner:PASSWORD@BROKER:6379/0 --server-key ed25519:… --name NAME --region REGION --slots 2",
      ),
    ),
  );
}

function drawHostsTable(hosts) {
  const el = $("#hosts-table");
  if (!hosts.length) {
    if (!$(".hosts-empty", el)) replace(el, noHosts());
    return;
  }
  const heads = ["Host", "Region", "State", "Load", "Warm sandboxes", "Jobs done", "Last seen"];
  replace(
    el,
    h(
      "table",
      { class: "hosts" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          heads.map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h("tbody", {}, hosts.map(hostRow)),
    ),
  );
}

// Redrawn only when the list changes, so a screen reader hears a new refusal once, not every picture.
let refusedShown = "[]";

function drawRefused(refused) {
  const key = JSON.stringify(refused);
  if (key === refusedShown) return;
  refusedShown = key;
  replace(
    $("#hosts-refused"),
    refused.length
      ? h(
          "div",
          { class: "notice warn hosts-refused", role: "alert" },
          h(
            "p",
            {},
            h("strong", {}, "Refused runner hosts: "),
            "these machines reach the broker as runner hosts but are not registered here, so the server places no jobs on them. Register one you trust with ",
            h("code", {}, "labrunner workers add NAME KEY"),
            "; find and stop any other.",
          ),
          h(
            "ul",
            {},
            refused.map((r) =>
              h("li", { "data-host": r.name }, h("code", {}, r.name || "(no name)"), ` — ${r.reason}`),
            ),
          ),
        )
      : null,
  );
}

function drawHosts(runner) {
  const remote = runner.mode === "remote";
  $("#hosts-panel").hidden = !remote;
  if (!remote) return;
  list($("#hosts-broker"), [
    ["Broker", runner.broker],
    ...(runner.broker_error ? [["Broker error", h("span", { class: "hosts-broker-error" }, runner.broker_error)]] : []),
  ]);
  drawRefused(runner.refused_hosts || []);
  drawHostsTable(runner.hosts || []);
}

function drawAdmin(picture) {
  const { runner, storage, controls } = picture;
  const warm = runner.warm_sandboxes || {};
  list($("#runner-health"), [
    ["Jobs run", runner.mode === "remote" ? "on runner hosts (listed below)" : "on this machine"],
    ["State", runner.state],
    ["Engine", runner.engine],
    ["Image", `${runner.image_ref || "–"} (${runner.image})`],
    ["Workers", runner.workers],
    ["Warm sandboxes", `${warm.idle ?? 0} idle for ${warm.users ?? 0} students (${bytes(warm.memory_bytes ?? 0)})`],
    ["Pooled sandboxes", warm.pooled ?? 0],
    ["Executor memory", runner.executor_rss_mb === undefined ? "–" : `${runner.executor_rss_mb} MB`],
    ["Executor recycles", runner.executor_recycles],
    ["Infrastructure retries", runner.infra_retries],
    ["Last infrastructure error", runner.last_infra_error || "none"],
    ["Jobs done since start", runner.jobs_done],
  ]);
  const backup = storage.last_backup;
  const purge = storage.last_retention;
  list($("#storage"), [
    ["Database", bytes(storage.db_bytes)],
    ["Blob store", bytes(storage.blob_bytes)],
    ["Free disk", bytes(storage.disk_free_bytes)],
    ["Last backup", backup ? `${backup.outcome} at ${backup.finished_at || backup.started_at}` : "never"],
    [
      "Last retention purge",
      purge ? `${purge.finished_at}: ${purge.rows} ${purge.what} (${purge.policy})` : "none yet",
    ],
  ]);
  drawHosts(runner);
  $("#error-tail").textContent = picture.errors.length ? picture.errors.join("\n") : "Nothing logged.";
  const pause = $("#pause-button");
  pause.textContent = controls.queue_paused ? "Resume the queue" : "Pause the queue";
  pause.dataset.paused = String(controls.queue_paused);
  $("#queue-state").textContent = controls.queue_paused ? "paused" : "running";
  $("#maintenance-state").textContent = controls.maintenance.on
    ? `On: “${controls.maintenance.message}”`
    : "Off: students can run and submit.";
  $("#verbose-state").textContent = controls.verbose_until
    ? `On until ${new Date(controls.verbose_until * 1000).toLocaleTimeString()}`
    : "Off";
  $("#verbose-button").dataset.on = String(Boolean(controls.verbose_until));
  $("#verbose-button").textContent = controls.verbose_until
    ? "Verbose runner logging off"
    : "Verbose runner logging on";
}

function lastPush(push) {
  if (!push) return "never";
  const at = new Date(push.at).toLocaleString();
  if (push.outcome === "ok") return `ok at ${at}${push.pushed === false ? " (nothing new)" : ""}`;
  return `failed at ${at}: ${push.error_code}${push.error_message ? ` (${push.error_message})` : ""}`;
}

function pending(sync) {
  if (!sync.central_url) return "–";
  if (sync.ack_error) return `acknowledgement file unreadable (${sync.ack_error}): the next push sends everything`;
  if (sync.unacknowledged === null) return "nothing acknowledged yet: the next push sends everything";
  const marks = `(acknowledged ${sync.acknowledged.watermark}, now ${sync.counter})`;
  if (!sync.unacknowledged) return `none: the central instance has everything ${marks}`;
  return `${sync.unacknowledged} changes not yet acknowledged ${marks}`;
}

function drawSync(sync) {
  const el = $("#sync-status");
  list(el, [
    ["Appliance id", sync.appliance_id || "not made yet (made at the first export or backup)"],
    ["Key fingerprint", sync.fingerprint],
    ["Central instance", sync.central_url || "not configured"],
    ["Last push", lastPush(sync.last_push)],
    ["Changes", pending(sync)],
  ]);
  el.dataset.lastPush = sync.last_push ? sync.last_push.outcome : "never";
}

function draw(picture) {
  last = picture;
  drawQueue(picture.queue, picture.at);
  drawJobs($("#jobs-table"), picture.jobs, false);
  drawJobs($("#failed-table"), picture.failed, true);
  drawThroughput(picture.throughput);
  if (isAdmin && picture.runner) drawAdmin(picture);
}

function connection(state, text) {
  const el = $("#dash-connection");
  el.dataset.state = state;
  replace(el, state === "live" ? null : h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

function connect() {
  // EventSource reconnects by itself after a drop (the server's `retry:` says how soon).
  const source = new EventSource("/api/dashboard/stream");
  source.addEventListener("open", () => connection("live", "Live"));
  source.addEventListener("snapshot", (event) => {
    connection("live", "Live");
    draw(JSON.parse(event.data));
  });
  source.addEventListener("error", () => connection("reconnecting", "Reconnecting…"));
}

function wireControls() {
  const error = $("#controls-error");
  const control = async (button, path, body) => {
    hideError(error);
    await busy(button, async () => {
      try {
        await api("POST", path, body);
      } catch (e) {
        showError(error, e);
      }
    });
  };
  $("#pause-button").addEventListener("click", (event) =>
    control(event.currentTarget, "/api/admin/queue", { paused: !last?.controls?.queue_paused }),
  );
  $("#verbose-button").addEventListener("click", (event) =>
    control(event.currentTarget, "/api/admin/runner/verbose", { on: !last?.controls?.verbose_until }),
  );
  $("#maintenance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    control($("#maintenance-on"), "/api/admin/maintenance", { on: true, message: $("#maintenance-text").value });
  });
  $("#maintenance-off").addEventListener("click", (event) =>
    control(event.currentTarget, "/api/admin/maintenance", { on: false }),
  );
}

// The Sync panel changes every few minutes at most: asked for apart from the live stream.
const SYNC_REFRESH_MS = 30_000;

async function refreshSync() {
  try {
    drawSync(await api("GET", "/api/admin/sync/status"));
  } catch (error) {
    showError($("#dash-error"), error);
  }
}

if (isAdmin) {
  wireControls();
  refreshSync();
  setInterval(refreshSync, SYNC_REFRESH_MS);
}
connect();
