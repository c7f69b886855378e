import { isStaff } from "../app.js";
import { createEditor } from "/static/vendor/codemirror.js";
import { api } from "../api.js";
import { $, busy, h, hideError, languageName, pageId, replace, showError, when } from "../dom.js";
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
    sub.late ? h("span", { class: "late-mark", title: "Sent after the due date" }, "late") : null,
  );
  if (sub.kind === "submission") setupComments(sub);
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

// --- teachers' comments: staff write them, the submission's student reads them ----------------

const commentForm = $("#comment-form");
const commentError = $("#comment-error");
let editing = null; // the comment being edited, or null when adding

async function loadComments() {
  const { comments } = await api("GET", `/api/submissions/${id}/comments`);
  const me = document.body.dataset.userId;
  replace(
    $("#comments"),
    comments.length
      ? h(
          "ul",
          { class: "plain" },
          comments.map((c) =>
            h(
              "li",
              { class: "comment" },
              h(
                "p",
                { class: "meta" },
                `${c.author ?? "A teacher"} · ${when(c.created_at)}${c.edited ? ` · edited ${when(c.updated_at)}` : ""}`,
              ),
              h("p", { class: "comment-body" }, c.body),
              isStaff && String(c.author_id) === me
                ? h("button", { type: "button", class: "link-button", onclick: () => startEdit(c) }, "Edit")
                : null,
            ),
          ),
        )
      : h("p", { class: "hint" }, isStaff ? "No comments yet." : "Your teacher has not commented on this submission."),
  );
}

function startEdit(comment) {
  editing = comment;
  commentForm.body.value = comment.body;
  $("#comment-button").textContent = "Save comment";
  $("#comment-cancel").hidden = false;
  commentForm.body.focus();
}

function stopEdit() {
  editing = null;
  commentForm.reset();
  $("#comment-button").textContent = "Add comment";
  $("#comment-cancel").hidden = true;
}

function setupComments() {
  $("#comments-section").hidden = false;
  if (isStaff) {
    commentForm.hidden = false;
    $("#comment-cancel").addEventListener("click", stopEdit);
    commentForm.addEventListener("submit", (event) => {
      event.preventDefault();
      hideError(commentError);
      const body = commentForm.body.value;
      if (!body.trim()) {
        showError(commentError, { message: "Write the comment first.", field: "body" }, commentForm);
        return;
      }
      busy($("#comment-button"), async () => {
        try {
          if (editing) await api("PATCH", `/api/submissions/${id}/comments/${editing.id}`, { body });
          else await api("POST", `/api/submissions/${id}/comments`, { body });
          stopEdit();
          await loadComments();
        } catch (error) {
          showError(commentError, error, commentForm);
        }
      });
    });
  }
  loadComments().catch((error) =>
    replace($("#comments"), h("p", { class: "notice error", role: "alert" }, error.message)),
  );
}

load().catch((error) => replace($("#result"), h("p", { class: "notice error", role: "alert" }, error.message)));
