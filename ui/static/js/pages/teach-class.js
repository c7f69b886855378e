import "../app.js";
import { api } from "../api.js";
import { $, busy, h, hideError, pageId, replace, showError, when } from "../dom.js";

const classId = pageId();
const status = $("#roster-status");

function csvCell(value) {
  return /[",\r\n;]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function showCredentials(entries) {
  if (!entries.length) return;
  const section = $("#credentials");
  section.hidden = false;
  const rows = $("#credentials-rows");
  for (const entry of entries) {
    rows.append(h("tr", {}, h("td", {}, entry.username), h("td", {}, h("code", {}, entry.password))));
  }
}

async function loadRoster() {
  const data = await api("GET", `/api/classes/${classId}`);
  $("#class-title").textContent = data.name;
  document.title = `${data.name} · Labrunner`;
  $("#join-code").textContent = data.join_code;
  replace(
    $("#roster"),
    data.members.length
      ? h(
          "table",
          { class: "list" },
          h("caption", { class: "visually-hidden" }, `Students of ${data.name}`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Username", "Added", "Actions"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            data.members.map((m) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, m.username),
                h("td", {}, when(m.added_at)),
                h(
                  "td",
                  { class: "row-actions" },
                  h("a", { href: `/teach/submissions?class_id=${classId}&user_id=${m.id}` }, "Submissions"),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "link-button",
                      "aria-label": `Reset the password of ${m.username}`,
                      onclick: (event) => resetPassword(event.target, m),
                    },
                    "Reset password",
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "link-button",
                      "aria-label": `Export the data of ${m.username}`,
                      onclick: () => openExport(m),
                    },
                    "Export data",
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "link-button danger",
                      "aria-label": `Erase ${m.username}`,
                      onclick: () => openErase(m),
                    },
                    "Erase student",
                  ),
                ),
              ),
            ),
          ),
        )
      : h(
          "p",
          { class: "empty-state" },
          "No students yet. Show them the join code, add them one by one, or import a CSV file.",
        ),
  );
}

async function resetPassword(button, member) {
  if (!confirm(`Give ${member.username} a new password? Their current one stops working and they are logged out.`))
    return;
  await busy(button, async () => {
    try {
      const result = await api("POST", `/api/users/${member.id}/reset-password`, {});
      showCredentials([result]);
      status.textContent = `${member.username} has a new password (shown above the list).`;
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

// Export and erasure each ask in a dialog first: one says what the file holds and how to treat
// it, the other has the teacher type the username again, which the server checks too.
const exportDialog = $("#export-dialog");
const eraseDialog = $("#erase-dialog");
const eraseForm = $("#erase-form");
let chosen = null;

function openExport(member) {
  chosen = member;
  $("#export-name").textContent = member.username;
  hideError($("#export-error"));
  exportDialog.showModal();
}

function openErase(member) {
  chosen = member;
  $("#erase-name").textContent = member.username;
  hideError($("#erase-error"));
  eraseForm.reset();
  eraseDialog.showModal();
  eraseForm.confirm_username.focus();
}

/** Fetch the export (so a refusal shows as a message, not as an error page) and save it. */
async function downloadExport(member) {
  const response = await fetch(`/api/users/${member.id}/export`, { credentials: "same-origin" });
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new Error(data?.error?.message || `The export failed (HTTP ${response.status}).`);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `labrunner-student-${member.id}.zip`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

$("#export-cancel").addEventListener("click", () => exportDialog.close());
$("#export-confirm").addEventListener("click", (event) =>
  busy(event.target, async () => {
    try {
      await downloadExport(chosen);
      exportDialog.close();
      status.textContent = `The data of ${chosen.username} was downloaded.`;
    } catch (error) {
      showError($("#export-error"), error);
    }
  }),
);

$("#erase-cancel").addEventListener("click", () => eraseDialog.close());
eraseForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#erase-error");
  hideError(error);
  const typed = eraseForm.confirm_username.value.trim();
  if (typed.toLowerCase() !== chosen.username.toLowerCase()) {
    showError(error, { message: `Type ${chosen.username} exactly to confirm.`, field: "confirm_username" }, eraseForm);
    return;
  }
  busy(eraseForm.querySelector("button[type=submit]"), async () => {
    try {
      const result = await api("POST", `/api/users/${chosen.id}/erase`, { confirm_username: typed });
      eraseDialog.close();
      status.textContent = `${chosen.username} was erased; their scores stay in the gradebook as “${result.username}”.`;
      await Promise.all([loadRoster(), loadGradebook()]);
    } catch (failure) {
      showError(error, failure, eraseForm);
    }
  });
});

async function importCsv(text, form, errorEl) {
  const result = await api("POST", `/api/classes/${classId}/roster/import`, text, { contentType: "text/csv" });
  showCredentials(result.created);
  const parts = [];
  if (result.created.length)
    parts.push(`${result.created.length} new ${result.created.length === 1 ? "account" : "accounts"}`);
  if (result.added.length) parts.push(`${result.added.length} existing added`);
  if (result.already_members.length) parts.push(`${result.already_members.length} already in the class`);
  status.textContent = `Done: ${parts.join(", ")}.`;
  form.reset();
  hideError(errorEl);
  await Promise.all([loadRoster(), loadGradebook()]);
}

const addForm = $("#add-form");
addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#add-error");
  hideError(error);
  const username = addForm.username.value.trim();
  if (!username) {
    showError(error, { message: "Type a username.", field: "username" }, addForm);
    return;
  }
  // One row of the same CSV the import takes, so both paths share the server's rules.
  const csv = `username,password,birthdate\r\n${[username, addForm.password.value, addForm.birthdate.value].map(csvCell).join(",")}\r\n`;
  busy(addForm.querySelector("button"), async () => {
    try {
      await importCsv(csv, addForm, error);
      addForm.username.focus();
    } catch (failure) {
      showError(
        error,
        { ...failure, message: failure.message.replace(/^Nothing was imported; fix these rows first: row 2: /, "") },
        addForm,
      );
    }
  });
});

const csvForm = $("#csv-form");
csvForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#csv-error");
  hideError(error);
  const file = csvForm.file.files[0];
  if (!file) {
    showError(error, { message: "Choose a CSV file first.", field: "file" }, csvForm);
    return;
  }
  busy(csvForm.querySelector("button"), async () => {
    try {
      await importCsv(await file.arrayBuffer(), csvForm, error);
    } catch (failure) {
      showError(error, failure, csvForm);
    }
  });
});

async function loadGradebook() {
  const book = await api("GET", `/api/classes/${classId}/gradebook`);
  if (!book.problems.length || !book.students.length) {
    replace(
      $("#gradebook"),
      h(
        "p",
        { class: "empty-state" },
        book.problems.length
          ? "No students yet."
          : "No problems are shown to this class yet: tick it in a problem's settings.",
      ),
    );
    return;
  }
  replace(
    $("#gradebook"),
    h(
      "table",
      { class: "list gradebook" },
      h("caption", { class: "visually-hidden" }, "Best score of each student on each problem, out of 100"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Student"),
          book.problems.map((p) =>
            h(
              "th",
              { scope: "col" },
              h("a", { href: `/teach/submissions?problem_id=${p.id}&class_id=${classId}` }, p.title),
            ),
          ),
          h("th", { scope: "col" }, "Solved"),
        ),
      ),
      h(
        "tbody",
        {},
        book.students.map((s) =>
          h(
            "tr",
            {},
            h(
              "th",
              { scope: "row" },
              h("a", { href: `/teach/submissions?class_id=${classId}&user_id=${s.id}` }, s.username),
            ),
            book.problems.map((p) => {
              const cell = s.cells[String(p.id)];
              const text = cell.best_score === null ? (cell.attempts ? "0" : "—") : `${Math.round(cell.best_score)}`;
              return h(
                "td",
                { class: cell.solved ? "cell-solved" : cell.attempts ? "cell-tried" : "cell-none" },
                cell.solved ? `${text} ✓` : text,
                cell.best_late
                  ? h("span", { class: "late-mark", title: "This score comes from a late submission" }, "late")
                  : cell.late_attempts
                    ? h(
                        "span",
                        { class: "meta", title: "Late submissions, after the due date" },
                        ` (${cell.late_attempts} late)`,
                      )
                    : null,
                cell.attempts
                  ? h(
                      "span",
                      { class: "visually-hidden" },
                      ` after ${cell.attempts} ${cell.attempts === 1 ? "try" : "tries"}`,
                    )
                  : null,
              );
            }),
            h("td", {}, `${s.solved} / ${book.problems.length}`),
          ),
        ),
      ),
    ),
  );
}

$("#print-credentials").addEventListener("click", () => {
  document.body.classList.add("printing-credentials");
  window.print();
  document.body.classList.remove("printing-credentials");
});

loadRoster().catch((error) => replace($("#roster"), h("p", { class: "notice error", role: "alert" }, error.message)));
loadGradebook().catch((error) =>
  replace($("#gradebook"), h("p", { class: "notice error", role: "alert" }, error.message)),
);
