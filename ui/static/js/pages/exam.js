// The exams of one class (the partial pages/_exam_form.html): list them, schedule one, change or
// delete it. Self-contained: it finds its class in its own section, so any page may include it.
import { api } from "../api.js";
import { $, busy, h, hideError, replace, showError, when } from "../dom.js";

const section = $("#exams");
const classId = Number(section.dataset.classId);
const form = $("#exam-form");
const error = $("#exam-error");
let editing = null; // the exam being changed, or null for a new one

const STATES = { upcoming: "Scheduled", running: "Running now", over: "Over" };

/** An API time as a datetime-local value, in the browser's time zone. */
function localInput(iso) {
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function isoOf(value) {
  return value ? new Date(value).toISOString() : "";
}

async function loadProblems(checked = []) {
  const { problems } = await api("GET", "/api/problems");
  const mine = problems.filter((p) => (p.classes || []).includes(classId));
  replace(
    $("#exam-problems"),
    mine.length
      ? mine.map((p) =>
          h(
            "li",
            {},
            h(
              "label",
              {},
              h("input", { type: "checkbox", value: p.id, checked: checked.includes(p.id) }),
              ` ${p.title}`,
            ),
          ),
        )
      : h("li", { class: "hint" }, "Assign problems to this class first."),
  );
}

function describe(exam) {
  const rules = [
    exam.runs_allowed ? "runs allowed" : "no runs",
    exam.max_submissions_per_problem === null
      ? "no submission limit"
      : `${exam.max_submissions_per_problem} submissions per problem`,
  ];
  return `${when(exam.starts_at)} – ${when(exam.ends_at)} · ${exam.problems.map((p) => p.title).join(", ")} · ${rules.join(", ")}`;
}

async function loadExams() {
  const { exams } = await api("GET", `/api/classes/${classId}/exams`);
  replace(
    $("#exam-list"),
    exams.length
      ? exams.map((exam) =>
          h(
            "li",
            { "data-exam-id": exam.id, "data-state": exam.state },
            h("strong", {}, exam.title),
            ` (${STATES[exam.state]}) `,
            h("span", { class: "meta" }, describe(exam)),
            " ",
            h("button", { type: "button", class: "link-button", onclick: () => edit(exam) }, "Change"),
            " ",
            h("button", { type: "button", class: "link-button", onclick: () => remove(exam) }, "Delete"),
          ),
        )
      : h("li", { class: "hint" }, "No exams yet."),
  );
}

async function edit(exam) {
  editing = exam;
  form.title.value = exam.title;
  form.starts_at.value = localInput(exam.starts_at);
  form.ends_at.value = localInput(exam.ends_at);
  form.runs_allowed.checked = exam.runs_allowed;
  form.max_submissions_per_problem.value = exam.max_submissions_per_problem ?? "";
  await loadProblems(exam.problem_ids);
  $("#exam-form-title").textContent = `Change ${exam.title}`;
  $("#exam-save").textContent = "Save changes";
  $("#exam-cancel").hidden = false;
  form.title.focus();
}

function reset() {
  editing = null;
  form.reset();
  hideError(error);
  $("#exam-form-title").textContent = "Schedule an exam";
  $("#exam-save").textContent = "Schedule exam";
  $("#exam-cancel").hidden = true;
  return loadProblems();
}

async function remove(exam) {
  if (!confirm(`Delete the exam ${exam.title}? Its students' submissions stay.`)) return;
  try {
    await api("DELETE", `/api/exams/${exam.id}`);
    $("#exam-status").textContent = `Deleted ${exam.title}.`;
    await loadExams();
  } catch (failure) {
    showError(error, failure);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  hideError(error);
  const max = form.max_submissions_per_problem.value.trim();
  const body = {
    title: form.title.value,
    starts_at: isoOf(form.starts_at.value),
    ends_at: isoOf(form.ends_at.value),
    problem_ids: [...$("#exam-problems").querySelectorAll("input:checked")].map((box) => Number(box.value)),
    runs_allowed: form.runs_allowed.checked,
    max_submissions_per_problem: max ? Number(max) : null,
  };
  busy($("#exam-save"), async () => {
    try {
      const saved = editing
        ? await api("PATCH", `/api/exams/${editing.id}`, body)
        : await api("POST", `/api/classes/${classId}/exams`, body);
      $("#exam-status").textContent = `${editing ? "Saved" : "Scheduled"} ${saved.title}.`;
      await reset();
      await loadExams();
    } catch (failure) {
      showError(error, failure, form);
    }
  });
});
$("#exam-cancel").addEventListener("click", () => reset());

Promise.all([loadExams(), loadProblems()]).catch((failure) => showError(error, failure));
