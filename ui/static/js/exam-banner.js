// A student's exam banner on every page: the running exam, when it ends and a countdown, whether
// running code is allowed (Run is hidden when it is not) and, on a problem page, how many of the
// exam's submissions are used. It polls GET /api/me/exam, which also keeps the student shown as
// online in their teacher's live view; when an exam starts or ends the page reloads, so what it
// lists follows the exam.
import { api } from "./api.js";
import { $, h, replace, when } from "./dom.js";

const POLL_MS = 15000;
let shownIds = null; // the running exams' ids at the last poll ("" when none)
let endsAt = null;

function banner() {
  let el = $("#exam-banner");
  if (!el) {
    el = h("div", { id: "exam-banner", class: "exam-banner", role: "region", "aria-label": "Exam" });
    $("#banner").before(el);
  }
  return el;
}

function left(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours} h ${String(minutes).padStart(2, "0")} min` : `${minutes}:${seconds}`;
}

function tick() {
  const countdown = $("#exam-countdown");
  if (!countdown || endsAt === null) return;
  const remaining = endsAt - Date.now();
  countdown.textContent = `${left(remaining)} left`;
  if (remaining <= 0) poll();
}

function problemId() {
  const workspace = $("#workspace");
  return workspace ? Number(workspace.dataset.id) : null;
}

function showRunState(runsAllowed) {
  for (const id of ["#run-button", "#run-stop", "#live-button"]) {
    const button = $(id);
    if (button && !runsAllowed) button.hidden = true;
  }
}

function render(exams) {
  const el = banner();
  if (!exams.length) {
    el.hidden = true;
    endsAt = null;
    return;
  }
  // The earliest end is the one the student is up against.
  const first = exams[0];
  endsAt = new Date(first.ends_at).getTime();
  const runsAllowed = exams.every((exam) => exam.runs_allowed);
  const here = problemId();
  const counts = exams
    .filter((exam) => exam.max_submissions_per_problem !== null)
    .flatMap((exam) => exam.problems.map((p) => ({ ...p, max: exam.max_submissions_per_problem })))
    .filter((p) => p.id === here);
  replace(
    el,
    h("strong", {}, `Exam in progress: ${exams.map((exam) => exam.title).join(", ")}`),
    h("span", {}, ` · ends ${when(first.ends_at)} · `),
    h("span", { id: "exam-countdown", class: "countdown", "aria-live": "off" }),
    runsAllowed ? null : h("span", { id: "exam-runs-off" }, " · Running code is turned off during this exam."),
    counts.map((p) =>
      h(
        "span",
        { id: "exam-submissions", "data-used": p.submissions_used },
        ` · ${p.submissions_used} of ${p.max} submissions used`,
      ),
    ),
  );
  el.hidden = false;
  showRunState(runsAllowed);
  tick();
}

async function poll() {
  let exams;
  try {
    ({ exams } = await api("GET", "/api/me/exam"));
  } catch {
    return; // offline or logged out: api() already sends a logged-out page to log in
  }
  const ids = exams.map((exam) => exam.id).join(",");
  if (shownIds !== null && ids !== shownIds) {
    location.reload(); // an exam started or ended: what this page lists changes with it
    return;
  }
  shownIds = ids;
  render(exams);
}

export function startExamBanner() {
  if (document.body.dataset.role !== "student") return;
  poll();
  setInterval(poll, POLL_MS);
  setInterval(tick, 1000);
  // A submission changes the count shown: look again once it is queued.
  const submit = $("#submit-button");
  if (submit) submit.addEventListener("click", () => setTimeout(poll, 1500));
}
