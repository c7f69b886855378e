import "../app.js";
import { api } from "../api.js";
import { $, busy, h, hideError, languageName, replace, showError } from "../dom.js";

async function loadClasses() {
  const { classes } = await api("GET", "/api/classes");
  replace(
    $("#class-list"),
    classes.length
      ? h(
          "ul",
          { class: "cards" },
          classes.map((c) =>
            h(
              "li",
              { class: "card-item" },
              h("a", { href: `/teach/classes/${c.id}`, class: "problem-link" }, c.name),
              h("span", { class: "meta" }, "Join code "),
              h("code", { class: "join-code-small" }, c.join_code),
            ),
          ),
        )
      : h("p", { class: "empty-state" }, "No classes yet: create your first one below."),
  );
  return classes;
}

async function loadProblems(classes) {
  const { problems } = await api("GET", "/api/problems");
  const names = new Map(classes.map((c) => [c.id, c.name]));
  replace(
    $("#problem-list"),
    problems.length
      ? h(
          "ul",
          { class: "cards" },
          problems.map((p) =>
            h(
              "li",
              { class: "card-item" },
              h("a", { href: `/teach/problems/${p.id}`, class: "problem-link" }, p.title),
              h("span", { class: "meta" }, languageName(p.language)),
              h(
                "span",
                { class: "meta" },
                p.classes.length
                  ? `Shown to ${p.classes.map((id) => names.get(id) || id).join(", ")}`
                  : "Not shown to any class yet",
              ),
              h("a", { href: `/teach/submissions?problem_id=${p.id}` }, "Submissions"),
            ),
          ),
        )
      : h("p", { class: "empty-state" }, "No problems yet."),
  );
}

async function load() {
  try {
    await loadProblems(await loadClasses());
  } catch (error) {
    replace($("#class-list"), h("p", { class: "notice error", role: "alert" }, error.message));
  }
}

const classForm = $("#class-form");
classForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#class-error");
  hideError(error);
  const name = classForm.name.value.trim();
  if (!name) {
    showError(error, { message: "Give the class a name.", field: "name" }, classForm);
    return;
  }
  busy(classForm.querySelector("button"), async () => {
    try {
      const created = await api("POST", "/api/classes", { name });
      location.assign(`/teach/classes/${created.id}`);
    } catch (failure) {
      showError(error, failure, classForm);
    }
  });
});

const importForm = $("#import-form");
importForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const error = $("#import-error");
  hideError(error);
  const file = importForm.file.files[0];
  if (!file) {
    showError(error, { message: "Choose a .zip file first.", field: "file" }, importForm);
    return;
  }
  busy(importForm.querySelector("button"), async () => {
    try {
      const created = await api("POST", "/api/problems/import", await file.arrayBuffer(), {
        contentType: "application/zip",
      });
      location.assign(`/teach/problems/${created.id}`);
    } catch (failure) {
      showError(error, failure, importForm);
    }
  });
});

load();
