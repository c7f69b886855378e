// The teacher's live view of a class during an exam: every student, online or not, and per exam
// problem the submissions made during the exam and the best score. One event stream per page
// (GET /api/exams/{id}/live); the browser's EventSource reconnects when it ends.
import "../app.js";
import { api } from "../api.js";
import { $, h, replace, when } from "../dom.js";
import { score } from "../results.js";

const page = $("#exam-page");
const classId = Number(page.dataset.classId);
const table = $("#exam-live");
const state = $("#live-state");
let source = null;

/** The exam to watch first: the running one, else the next, else the latest. */
function pick(exams) {
  return (
    exams.find((e) => e.state === "running") ||
    exams.find((e) => e.state === "upcoming") ||
    exams[exams.length - 1] ||
    null
  );
}

function cell(problem, limit) {
  const used = limit === null ? `${problem.submissions}` : `${problem.submissions} of ${limit}`;
  return h(
    "td",
    { "data-submissions": problem.submissions },
    `${used} submitted`,
    problem.best_score === null ? null : h("span", { class: "meta" }, ` · best ${score(problem.best_score)}`),
  );
}

function render(view) {
  const exam = view.exam;
  $("#exam-summary").textContent =
    `${exam.title}: ${when(exam.starts_at)} – ${when(exam.ends_at)} · ` +
    `${exam.runs_allowed ? "runs allowed" : "no runs"} · ` +
    (exam.max_submissions_per_problem === null
      ? "no submission limit"
      : `${exam.max_submissions_per_problem} submissions per problem`);
  const limit = exam.max_submissions_per_problem;
  replace(
    table,
    h(
      "table",
      { class: "list", id: "exam-live-table" },
      h("caption", { class: "visually-hidden" }, `Students of the class during ${exam.title}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Student"),
          h("th", { scope: "col" }, "Online"),
          exam.problems.map((p) => h("th", { scope: "col" }, p.title)),
        ),
      ),
      h(
        "tbody",
        {},
        view.students.map((student) =>
          h(
            "tr",
            { "data-student": student.username },
            h("th", { scope: "row" }, student.username),
            h(
              "td",
              { class: "presence", "data-online": String(student.online) },
              student.online
                ? "● online"
                : student.last_seen_at
                  ? `offline (seen ${when(student.last_seen_at)})`
                  : "offline",
            ),
            exam.problems.map((p) => cell(student.problems[String(p.id)], limit)),
          ),
        ),
      ),
    ),
  );
  state.textContent = `Live · updated ${new Date().toLocaleTimeString()} · online means seen in the last ${view.presence_s} s`;
}

function watch(examId) {
  if (source) source.close();
  source = new EventSource(`/api/exams/${examId}/live`);
  source.addEventListener("progress", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    state.textContent = "Reconnecting…";
  });
}

async function start() {
  const [klass, { exams }] = await Promise.all([
    api("GET", `/api/classes/${classId}`),
    api("GET", `/api/classes/${classId}/exams`),
  ]);
  $("#exam-heading").textContent = `Exam · ${klass.name}`;
  const first = pick(exams);
  if (!first) {
    state.textContent = "";
    replace(
      table,
      h(
        "p",
        { class: "empty-state" },
        "This class has no exam. Schedule one on ",
        h("a", { href: `/teach/classes/${classId}` }, "the class's page"),
        ".",
      ),
    );
    return;
  }
  const select = $("#exam-pick");
  if (exams.length > 1) {
    replace(
      select,
      exams.map((e) => h("option", { value: e.id, selected: e.id === first.id }, `${e.title} (${when(e.starts_at)})`)),
    );
    $("#exam-pick-field").hidden = false;
    select.addEventListener("change", () => watch(Number(select.value)));
  }
  watch(first.id);
}

start().catch((error) => {
  state.textContent = error.message;
});
