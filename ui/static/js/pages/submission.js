import { isStaff } from "../app.js";
import { createEditor } from "/static/vendor/codemirror.js";
import { api } from "../api.js";
import { $, h, languageName, pageId, replace, when } from "../dom.js";
import { renderSubmission } from "../results.js";
import { watch } from "../workbench.js";

const id = pageId();
const meta = $("#submission-meta");

async function load() {
  let sub = await api("GET", `/api/submissions/${id}`);
  const problem = await api("GET", `/api/problems/${sub.problem_id}`).catch(() => null);
  const limits = problem ? { time_limit_ms: problem.time_limit_ms, memory_limit_mb: problem.memory_limit_mb } : {};
  $("#submission-title").textContent = problem ? `${problem.title}: submission ${sub.id}` : `Submission ${sub.id}`;
  document.title = `${$("#submission-title").textContent} · Labrunner`;
  $("#back-link").href = isStaff
    ? `/teach/submissions?problem_id=${sub.problem_id}`
    : problem
      ? `/problems/${sub.problem_id}`
      : "/submissions";
  $("#back-link").textContent = isStaff ? "← All submissions of this problem" : "← Back to the problem";
  let author = "";
  if (isStaff) {
    const { submissions } = await api("GET", `/api/submissions?problem_id=${sub.problem_id}&user_id=${sub.user_id}`);
    author = `By ${submissions.length ? submissions[0].username : `user ${sub.user_id}`} · `;
  }
  replace(
    meta,
    author,
    `Attempt ${sub.attempts ?? "—"} · sent ${when(sub.created_at)} · ${languageName(sub.language)}`,
  );
  createEditor($("#code"), {
    doc: sub.code,
    language: sub.language,
    readOnly: true,
    label: "Submitted code (read only)",
  });
  if (sub.status === "queued" || sub.status === "running") {
    await watch("submissions", id);
    sub = await api("GET", `/api/submissions/${id}`);
  }
  renderSubmission($("#result"), sub, limits);
  if (isStaff && sub.rejudges && sub.rejudges.length) {
    replace(
      $("#rejudges"),
      h("h3", {}, "Rejudges"),
      h(
        "p",
        { class: "hint" },
        sub.published_rejudge
          ? `Students see the result of rejudge ${sub.published_rejudge}; the original result was ${sub.original.verdict ?? sub.original.status}.`
          : "Students still see the original result; publish the rejudge on the problem's page to show them the new one.",
      ),
      h(
        "ul",
        {},
        sub.rejudges.map((r) =>
          h("li", {}, `Rejudge ${r.id}: ${r.verdict ?? r.status} (${r.score ?? "—"} / 100), ${when(r.finished_at)}`),
        ),
      ),
    );
  }
}

load().catch((error) => replace($("#result"), h("p", { class: "notice error", role: "alert" }, error.message)));
