import "../app.js";
import { api } from "../api.js";
import { $, busy, h, hideError, languageName, replace, showError, when } from "../dom.js";
import { score } from "../results.js";

const list = $("#problem-list");
const classList = $("#class-list");

function status(progress) {
  if (!progress) return h("span", { class: "status-pill todo" }, "Not started");
  if (progress.solved) return h("span", { class: "status-pill solved" }, "Solved ✓");
  if (progress.last_status === "queued" || progress.last_status === "running") {
    return h("span", { class: "status-pill pending" }, "Being judged…");
  }
  return h("span", { class: "status-pill tried" }, `Tried · best ${score(progress.best_score)}`);
}

/** When the problem is due for this student (in their own time zone), if it is. */
function deadline(problem) {
  if (!problem.due_at) return null;
  const due = when(problem.due_at);
  if (!problem.past_due) return h("span", { class: "meta deadline", "data-state": "open" }, `Due ${due}`);
  return problem.late_policy === "close"
    ? h("span", { class: "meta deadline", "data-state": "closed" }, `Closed since ${due}`)
    : h("span", { class: "meta deadline", "data-state": "late" }, `Was due ${due} · late submissions accepted`);
}

async function load() {
  try {
    const [{ problems }, { progress }, { classes }] = await Promise.all([
      api("GET", "/api/problems"),
      api("GET", "/api/me/progress"),
      api("GET", "/api/classes"),
    ]);
    const byProblem = new Map(progress.map((p) => [p.problem_id, p]));
    replace(
      classList,
      classes.length
        ? classes.map((c) => h("li", {}, c.name))
        : h("li", { class: "hint" }, "None yet: join one with its code."),
    );
    if (!problems.length) {
      replace(
        list,
        h(
          "p",
          { class: "empty-state" },
          "No problems yet. Join your class with the code your teacher gives you; its problems appear here.",
        ),
      );
      return;
    }
    replace(
      list,
      h(
        "ul",
        { class: "problem-cards" },
        problems.map((problem) => {
          const mine = byProblem.get(problem.id);
          return h(
            "li",
            { class: "problem-card" },
            h("a", { href: `/problems/${problem.id}`, class: "problem-link" }, problem.title),
            h("span", { class: "meta" }, languageName(problem.language)),
            deadline(problem),
            status(mine),
            mine
              ? h(
                  "span",
                  { class: "meta" },
                  `${mine.attempts} ${mine.attempts === 1 ? "try" : "tries"} · last ${when(mine.last_submitted_at)}`,
                )
              : null,
          );
        }),
      ),
    );
  } catch (error) {
    replace(list, h("p", { class: "notice error", role: "alert" }, error.message));
  }
}

const form = $("#join-form");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#join-error");
  hideError(error);
  const code = form.code.value.replace(/\s+/g, "").toUpperCase();
  if (!code) {
    showError(error, { message: "Type the class code first.", field: "code" }, form);
    return;
  }
  busy(form.querySelector("button[type=submit]"), async () => {
    try {
      const joined = await api("POST", "/api/classes/join", { code });
      form.reset();
      $("#join-status").textContent = `You joined ${joined.name}.`;
      await load();
    } catch (failure) {
      showError(error, failure, form);
    }
  });
});

load();
