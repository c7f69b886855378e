import "../app.js";
import { api } from "../api.js";
import { $, $$, busy, h, hideError, pageId, replace, showError } from "../dom.js";
import { badge, renderSubmission, score } from "../results.js";
import { resumeRun, setupWorkbench, watch } from "../workbench.js";

const form = $("#problem-form");
const formError = $("#problem-error");
const saveStatus = $("#save-status");
const testsEl = $("#tests");
let problemId = pageId();
let problem = null;
let dirty = false;
let testCounter = 0;

// --- test cases -----------------------------------------------------------------------------

const VISIBILITY = [
  ["visible", "Visible: an example students see in full"],
  ["hidden", "Hidden: students never see its data"],
  ["reveal_later", "Hidden until a date, then visible"],
];

function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function addTest(test = {}) {
  const n = ++testCounter;
  const id = (name) => `test-${n}-${name}`;
  const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: id(name) }, label), control);
  const visibility = h(
    "select",
    { id: id("visibility"), "data-key": "visibility" },
    VISIBILITY.map(([value, label]) =>
      h("option", { value, selected: (test.visibility || "hidden") === value }, label),
    ),
  );
  const revealField = field(
    "reveal",
    "Reveal on",
    h("input", {
      id: id("reveal"),
      type: "datetime-local",
      "data-key": "reveal_at",
      value: localInput(test.reveal_at),
    }),
  );
  revealField.hidden = visibility.value !== "reveal_later";
  visibility.addEventListener("change", () => {
    revealField.hidden = visibility.value !== "reveal_later";
  });
  const box = h(
    "fieldset",
    { class: "test-case" },
    h("legend", {}, "Test"),
    h(
      "div",
      { class: "test-row" },
      field("name", "Name", h("input", { id: id("name"), "data-key": "name", value: test.name || "", maxlength: 200 })),
      field("visibility", "Who sees it", visibility),
      revealField,
      field(
        "weight",
        "Weight",
        h("input", {
          id: id("weight"),
          "data-key": "weight",
          type: "number",
          min: 0,
          step: "any",
          value: test.weight ?? 1,
        }),
      ),
    ),
    h(
      "div",
      { class: "io-grid" },
      field(
        "stdin",
        "Input",
        h("textarea", { id: id("stdin"), "data-key": "stdin", rows: 3, spellcheck: "false" }, test.stdin || ""),
      ),
      field(
        "expected",
        "Expected output",
        h(
          "textarea",
          { id: id("expected"), "data-key": "expected_stdout", rows: 3, spellcheck: "false" },
          test.expected_stdout || "",
        ),
      ),
    ),
    h(
      "button",
      {
        type: "button",
        class: "link-button danger",
        onclick: () => {
          box.remove();
          renumber();
          dirty = true;
        },
      },
      "Remove this test",
    ),
  );
  testsEl.append(box);
  renumber();
  return box;
}

/** Legends and field names follow the order, so a server error like test_cases[1].stdin finds its box. */
function renumber() {
  $$(".test-case", testsEl).forEach((box, index) => {
    box.querySelector("legend").textContent = `Test ${index + 1}`;
    for (const input of $$("[data-key]", box)) input.name = `test_cases[${index}].${input.dataset.key}`;
    box.querySelector("button").setAttribute("aria-label", `Remove test ${index + 1}`);
  });
}

function readTests() {
  return $$(".test-case", testsEl).map((box) => {
    const value = (key) => box.querySelector(`[data-key="${key}"]`).value;
    const test = {
      name: value("name").trim(),
      stdin: value("stdin"),
      expected_stdout: value("expected_stdout"),
      visibility: value("visibility"),
      weight: value("weight") === "" ? 1 : Number(value("weight")),
    };
    if (test.visibility === "reveal_later" && value("reveal_at"))
      test.reveal_at = new Date(value("reveal_at")).toISOString();
    if (!test.name) delete test.name;
    return test;
  });
}

// --- the problem form -----------------------------------------------------------------------

function readForm() {
  const body = {
    title: form.title.value.trim(),
    statement: form.statement.value,
    language: form.language.value,
    comparison: form.comparison.value,
    hidden_feedback: form.hidden_feedback.value,
    classes: $$("#class-boxes input:checked").map((box) => Number(box.value)),
    test_cases: readTests(),
  };
  if (form.time_limit_ms.value) body.time_limit_ms = Number(form.time_limit_ms.value);
  if (form.memory_limit_mb.value) body.memory_limit_mb = Number(form.memory_limit_mb.value);
  if (body.comparison === "numeric" && form.tolerance.value) body.tolerance = Number(form.tolerance.value);
  return body;
}

function fill(p) {
  form.title.value = p.title;
  form.statement.value = p.statement;
  form.language.value = p.language;
  form.time_limit_ms.value = p.time_limit_ms;
  form.memory_limit_mb.value = p.memory_limit_mb;
  form.comparison.value = p.comparison;
  form.tolerance.value = p.tolerance;
  $("#tolerance-field").hidden = p.comparison !== "numeric";
  form.hidden_feedback.value = p.hidden_feedback;
  for (const box of $$("#class-boxes input")) box.checked = p.classes.includes(Number(box.value));
  testsEl.replaceChildren();
  for (const test of p.test_cases) addTest(test);
}

async function save() {
  hideError(formError);
  const body = readForm();
  if (!body.title) throw Object.assign(new Error("Give the problem a title."), { field: "title" });
  if (!body.test_cases.length) throw Object.assign(new Error("Add at least one test case."), { field: "test_cases" });
  if (problemId) {
    problem = await api("PATCH", `/api/problems/${problemId}`, body);
    dirty = false;
    saveStatus.textContent = "Saved.";
    return problem;
  }
  problem = await api("POST", "/api/problems", body);
  dirty = false;
  location.assign(`/teach/problems/${problem.id}`);
  return problem;
}

form.addEventListener("input", () => {
  dirty = true;
  saveStatus.textContent = "Unsaved changes.";
});
form.comparison.addEventListener("change", () => {
  $("#tolerance-field").hidden = form.comparison.value !== "numeric";
});
$("#add-test").addEventListener("click", () => {
  dirty = true;
  addTest().querySelector("input").focus();
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#save-button"), async () => {
    try {
      await save();
      if (bench && problem) bench.setLanguage(problem.language);
    } catch (error) {
      showError(formError, error, form);
      saveStatus.textContent = "Not saved.";
    }
  });
});
window.addEventListener("beforeunload", (event) => {
  if (dirty) event.preventDefault(); // the problem form has no draft: ask before losing edits
});

// --- check my solution, rejudge -------------------------------------------------------------

let bench = null;

async function check() {
  const button = $("#check-button");
  const status = $("#job-status");
  await busy(button, async () => {
    try {
      if (dirty) {
        status.textContent = "Saving the problem first: the check uses the saved tests…";
        await save();
      }
      const code = bench.editor.getCode();
      if (!code.trim()) {
        status.textContent = "Write your solution in the editor first.";
        return;
      }
      const queued = await api("POST", `/api/problems/${problemId}/check`, { language: problem.language, code });
      const result = await watch("submissions", queued.id);
      $("#result-section").hidden = false;
      renderSubmission($("#result"), result, problem);
      const failed = result.tests.filter((t) => t.verdict !== "accepted").length;
      status.textContent =
        result.status === "failed"
          ? "The check could not run; try again."
          : failed || result.verdict !== "accepted"
            ? `Your solution fails ${failed || "some"} of ${result.tests.length} tests: fix the solution or the tests.`
            : `All ${result.tests.length} tests pass. Ready to show to a class.`;
    } catch (error) {
      status.textContent = error.message;
      if (error.field) showError(formError, error, form);
    }
  });
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function judged({ verdict, status, score: value }) {
  return [badge(verdict, status), " ", h("span", { class: "score" }, score(value))];
}

/** The newest rejudge of each submission: old result → new result, changed rows marked. */
function renderRejudges(results) {
  $("#rejudge-section").hidden = results.state === "none";
  const rows = results.submissions.map((row) =>
    h(
      "tr",
      { class: row.changed ? "changed" : null },
      h("th", { scope: "row" }, h("a", { href: `/submissions/${row.submission_id}` }, row.username)),
      h("td", {}, judged(row.old)),
      h("td", {}, judged(row.new)),
      h("td", {}, row.changed ? h("strong", {}, "Changed") : row.status === "done" ? "Same" : ""),
    ),
  );
  replace(
    $("#rejudge-list"),
    h(
      "table",
      { class: "rejudges" },
      h("caption", { class: "hint" }, `${plural(results.changed, "result", "results")} changed`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Student", "Before", "After rejudge", "Change"].map((label) => h("th", { scope: "col" }, label)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function rejudgeMessage(results) {
  const count = plural(results.total, "submission", "submissions");
  if (results.state === "running") return `${count} being rejudged: ${results.finished} done so far…`;
  return `Rejudge done: ${count} rejudged, ${plural(results.changed, "result", "results")} changed. Publish when you are happy with the new results.`;
}

let following = 0; // the newest follower wins: a second click on Rejudge starts a new one

/** Show the rejudge's results as they come in, until every submission is rejudged. `quiet`: say
 * nothing of a rejudge that had finished before the page opened. */
async function followRejudge(status, { quiet = false } = {}) {
  const mine = ++following;
  let wait = 0;
  let delay = 1000;
  for (;;) {
    let results;
    try {
      results = await api("GET", `/api/problems/${problemId}/rejudges?wait=${wait}`);
    } catch (error) {
      if (!(error.offline || error.status >= 500)) throw error;
      status.textContent = "Lost the connection to the server; reconnecting…";
      await new Promise((wake) => setTimeout(wake, delay));
      delay = Math.min(delay * 2, 15000);
      continue;
    }
    if (mine !== following) return;
    renderRejudges(results);
    if (results.state === "running" || !quiet) status.textContent = rejudgeMessage(results);
    if (results.state !== "running") return;
    quiet = false;
    wait = 20;
    delay = 1000;
  }
}

function setupManage() {
  $("#manage-section").hidden = false;
  $("#submissions-link").href = `/teach/submissions?problem_id=${problemId}`;
  $("#preview-link").href = `/problems/${problemId}`;
  $("#export-link").href = `/api/problems/${problemId}/export`;
  const status = $("#manage-status");
  $("#rejudge-button").addEventListener("click", (event) =>
    busy(event.target, async () => {
      try {
        const result = await api("POST", `/api/problems/${problemId}/rejudge`, {});
        if (!result.rejudges.length) {
          status.textContent = "There are no submissions to rejudge yet.";
          return;
        }
        followRejudge(status).catch((error) => (status.textContent = error.message));
      } catch (error) {
        status.textContent = error.message;
      }
    }),
  );
  $("#publish-button").addEventListener("click", (event) =>
    busy(event.target, async () => {
      try {
        const result = await api("POST", `/api/problems/${problemId}/rejudge/publish`, {});
        renderRejudges(await api("GET", `/api/problems/${problemId}/rejudges`));
        status.textContent = `Students now see the new results of ${result.published} ${result.published === 1 ? "submission" : "submissions"}.`;
      } catch (error) {
        status.textContent = error.message;
      }
    }),
  );
  followRejudge(status, { quiet: true }).catch((error) => (status.textContent = error.message));
  $("#delete-button").addEventListener("click", async () => {
    if (!confirm(`Delete “${problem.title}” with all its tests and submissions? This cannot be undone.`)) return;
    try {
      await api("DELETE", `/api/problems/${problemId}`);
      dirty = false;
      location.assign("/teach");
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  const [{ languages }, { classes }] = await Promise.all([api("GET", "/api/languages"), api("GET", "/api/classes")]);
  replace(
    form.language,
    languages.map((lang) => h("option", { value: lang.id }, `${lang.name} ${lang.version}`)),
  );
  replace(
    $("#class-boxes"),
    classes.length
      ? classes.map((c) =>
          h(
            "div",
            { class: "check" },
            h("input", { type: "checkbox", id: `class-${c.id}`, value: c.id }),
            h("label", { for: `class-${c.id}` }, c.name),
          ),
        )
      : h("p", { class: "hint" }, "You have no classes yet."),
  );
  if (!problemId) {
    addTest({ name: "example", visibility: "visible" });
    addTest({ name: "hidden 1", visibility: "hidden" });
    dirty = false;
    form.title.focus();
    return;
  }
  problem = await api("GET", `/api/problems/${problemId}`);
  $("#editor-title").textContent = `Edit: ${problem.title}`;
  document.title = `${problem.title} · Labrunner`;
  fill(problem);
  dirty = false;
  $("#check-section").hidden = false;
  bench = await setupWorkbench({
    draftUrl: `/api/problems/${problemId}/draft`,
    draftKey: `problem:${problemId}`,
    language: problem.language,
    limits: problem,
    label: "Code editor: your reference solution",
    keys: { "Mod-Enter": () => bench.run() },
  });
  $("#run-button").addEventListener("click", () => bench.run());
  $("#check-button").addEventListener("click", check);
  resumeRun(bench);
  setupAssets();
  setupManage();
}

start().catch((error) => showError(formError, error));

// --- pictures and files (problem assets) ----------------------------------------------------

async function loadAssets() {
  const { assets } = await api("GET", `/api/problems/${problemId}/assets`);
  replace(
    $("#asset-list"),
    assets.length
      ? assets.map((asset) =>
          h(
            "li",
            { class: "asset" },
            asset.media_type.startsWith("image/") ? h("img", { src: asset.url, alt: "", class: "thumb" }) : null,
            h("a", { href: asset.url, target: "_blank" }, asset.name),
            h(
              "code",
              {},
              asset.media_type.startsWith("image/") ? `![](${asset.name})` : `[${asset.name}](${asset.name})`,
            ),
            asset.in_workdir ? h("span", { class: "meta" }, "in the working directory") : null,
            h(
              "button",
              {
                type: "button",
                class: "link-button danger",
                "aria-label": `Remove ${asset.name}`,
                onclick: async () => {
                  if (!confirm(`Remove ${asset.name}?`)) return;
                  await api("DELETE", `/api/problems/${problemId}/assets/${asset.id}`);
                  await loadAssets();
                },
              },
              "Remove",
            ),
          ),
        )
      : h("li", { class: "hint" }, "None yet."),
  );
}

function setupAssets() {
  $("#assets-section").hidden = false;
  const assetForm = $("#asset-form");
  assetForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const error = $("#asset-error");
    hideError(error);
    const file = assetForm.file.files[0];
    if (!file) {
      showError(error, { message: "Choose a file first.", field: "file" }, assetForm);
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("in_workdir", assetForm.in_workdir.checked ? "true" : "false");
    busy(assetForm.querySelector("button"), async () => {
      try {
        await api("POST", `/api/problems/${problemId}/assets`, body);
        assetForm.reset();
        await loadAssets();
      } catch (failure) {
        showError(error, failure, assetForm);
      }
    });
  });
  loadAssets().catch((error) => showError($("#asset-error"), error));
}
