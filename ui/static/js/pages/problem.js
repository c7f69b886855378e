import "../app.js";
import { api } from "../api.js";
import { isWaiting, waitOut } from "../countdown.js";
import { $, announce, h, replace, when } from "../dom.js";
import { badge, renderSubmission, score } from "../results.js";
import { setupLive } from "../live.js";
import { resumeRun, reveal, setupWorkbench, watch } from "../workbench.js";

const workspace = $("#workspace");
const problemId = Number(workspace.dataset.id);
const limitsEl = $("#limits");
const limits = {
  time_limit_ms: Number(limitsEl.dataset.timeLimitS) * 1000,
  memory_limit_mb: Number(limitsEl.dataset.memoryLimitMb),
};

// A student with neither a draft nor a submission yet starts from the teacher's starter code.
const problemReply = api("GET", `/api/problems/${problemId}`);
const historyReply = loadHistory().catch(() => []);
const starter = await Promise.all([problemReply, historyReply])
  .then(([problem, mine]) => (mine.length ? "" : problem.starter_code))
  .catch(() => "");

const bench = await setupWorkbench({
  draftUrl: `/api/problems/${problemId}/draft`,
  draftKey: `problem:${problemId}`,
  language: workspace.dataset.language,
  limits,
  label: `Code editor: your solution to ${$("#problem-title").textContent}`,
  keys: { "Mod-Enter": () => bench.run(), "Shift-Mod-Enter": () => submit() },
  starter,
});
$("#run-button").addEventListener("click", () => bench.run());
setupLive(bench);
$("#submit-button").addEventListener("click", () => submit());

async function submit() {
  const button = $("#submit-button");
  if (button.disabled) return;
  const status = $("#job-status");
  const code = bench.editor.getCode();
  if (!code.trim()) {
    status.textContent = "Write your solution first, then press Submit.";
    return;
  }
  button.disabled = true;
  try {
    const queued = await api("POST", `/api/problems/${problemId}/submissions`, { language: bench.language, code });
    if (queued.deduplicated) status.textContent = "You sent this exact code a moment ago; showing that submission.";
    await loadHistory();
    await follow(queued.id, { show: true });
  } catch (error) {
    if (!waitOut(error, button, status, "submit")) status.textContent = error.message;
  } finally {
    if (!isWaiting(button)) button.disabled = false;
  }
}

/** Follow a submission to its result; `show` scrolls the result into view (after Submit, not on load). */
async function follow(id, { show = false } = {}) {
  const section = $("#result-section");
  const submission = await watch("submissions", id);
  section.hidden = false;
  renderSubmission($("#result"), submission, limits);
  if (show) reveal(section);
  $("#job-status").textContent =
    submission.status === "failed"
      ? "Your submission could not be judged."
      : `Judged: score ${score(submission.score)}.`;
  await loadHistory();
}

/** The due date that applies to this student, in their own time zone, and what happens after it. */
function showDeadline(problem) {
  const el = $("#deadline");
  if (!problem.due_at) return;
  const due = when(problem.due_at);
  const closes = problem.late_policy === "close";
  el.dataset.state = problem.past_due ? (closes ? "closed" : "late") : "open";
  el.textContent = !problem.past_due
    ? `Due ${due}. ${closes ? "After that, submissions are not accepted." : "Later submissions are accepted but marked late."}`
    : closes
      ? `Closed: this problem was due ${due} and takes no more submissions.`
      : `The due date has passed (${due}): you can still submit, but it will be marked late.`;
  el.hidden = false;
}

async function loadExamples(problem) {
  const examples = problem.test_cases.filter((test) => !("visibility" in test) || test.visibility === "visible");
  const shown = examples.map((test) =>
    h(
      "div",
      { class: "example" },
      h("h3", {}, test.name),
      h(
        "div",
        { class: "io-grid" },
        h("div", { class: "io" }, h("h4", {}, "Input"), h("pre", { tabindex: "0" }, test.stdin || "(no input)")),
        h("div", { class: "io" }, h("h4", {}, "Expected output"), h("pre", { tabindex: "0" }, test.expected_stdout)),
      ),
    ),
  );
  const hidden = problem.hidden_test_count;
  replace(
    $("#examples"),
    shown.length ? shown : h("p", { class: "hint" }, "No examples for this problem."),
    hidden
      ? h(
          "p",
          { class: "hint" },
          problem.hidden_feedback === "summary"
            ? `Your submission is also checked against ${hidden} hidden ${hidden === 1 ? "test" : "tests"}: you will see how many of them pass, but not what they contain.`
            : `Your submission is also checked against ${hidden} hidden ${hidden === 1 ? "test" : "tests"}: you will see if ${hidden === 1 ? "it passes" : "they pass"}, but not what ${hidden === 1 ? "it contains" : "they contain"}.`,
        )
      : null,
  );
}

async function loadHistory() {
  const { submissions } = await api("GET", `/api/submissions?problem_id=${problemId}`);
  const mine = submissions.filter((s) => String(s.user_id) === document.body.dataset.userId);
  if (!mine.length) {
    replace($("#history"), h("p", { class: "hint" }, "None yet."));
    return mine;
  }
  replace(
    $("#history"),
    h(
      "ol",
      { class: "history", reversed: true },
      mine.map((s) =>
        h(
          "li",
          {},
          h("a", { href: `/submissions/${s.id}` }, when(s.created_at)),
          " ",
          badge(s.verdict, s.status),
          " ",
          h("span", { class: "meta" }, score(s.score)),
          s.late ? h("span", { class: "late-mark" }, "late") : null,
        ),
      ),
    ),
  );
  return mine;
}

async function checkRunner() {
  try {
    const health = await fetch("/healthz").then((r) => r.json());
    if (health.runner !== "ok" || health.image !== "ok") {
      announce(
        "The code runner is having trouble right now. Keep writing — your code is saved. Programs you run or submit wait in the queue until it is back.",
        "warn",
      );
    }
  } catch {
    // Unreachable: api() calls say so when they are made.
  }
}

checkRunner();
problemReply
  .then((problem) => {
    showDeadline(problem);
    return loadExamples(problem);
  })
  .catch((error) => replace($("#examples"), h("p", { class: "notice error" }, error.message)));
const history = await historyReply;
resumeRun(bench);
// A submission still being judged when the page was reloaded: keep following it.
const pending = history.find((s) => s.status === "queued" || s.status === "running");
if (pending) follow(pending.id).catch(() => {});
else if (history.length && history[0].status !== "queued") {
  const last = await api("GET", `/api/submissions/${history[0].id}`).catch(() => null);
  if (last) {
    $("#result-section").hidden = false;
    $("#result-title").textContent = "Result of your last submission";
    renderSubmission($("#result"), last, limits);
  }
}
