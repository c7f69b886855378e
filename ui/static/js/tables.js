// A plain, accessible table of submissions, shared by the student's and the teacher's lists.
import { h, when } from "./dom.js";
import { badge, score } from "./results.js";

export function submissionTable(submissions, { showStudent = false, caption = "Submissions" } = {}) {
  if (!submissions.length) return h("p", { class: "empty-state" }, "No submissions yet.");
  const head = ["When", ...(showStudent ? ["Student"] : []), "Problem", "Verdict", "Score", ""];
  return h(
    "table",
    { class: "list" },
    h("caption", { class: "visually-hidden" }, caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((label) => h("th", { scope: "col" }, label)),
      ),
    ),
    h(
      "tbody",
      {},
      submissions.map((s) =>
        h(
          "tr",
          {},
          h("td", {}, when(s.created_at)),
          showStudent
            ? h(
                "td",
                {},
                String(s.user_id) === document.body.dataset.userId ? `${s.username} (your check)` : s.username,
              )
            : null,
          h("td", {}, s.problem_title),
          h("td", {}, badge(s.verdict, s.status), s.late ? h("span", { class: "late-mark" }, "late") : null),
          h("td", {}, score(s.score)),
          h("td", {}, h("a", { href: `/submissions/${s.id}`, "aria-label": `Open submission ${s.id}` }, "Open")),
        ),
      ),
    ),
  );
}
