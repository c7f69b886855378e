import "../app.js";
import { api } from "../api.js";
import { $, $$, busy, h, hideError, languageName, replace, showError, when } from "../dom.js";

const list = $("#set-list");

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function problemRow(set, problem) {
  const id = `set-${set.id}-problem-${problem.id}`;
  const tests = `${plural(problem.visible_tests, "visible test")}, ${plural(problem.hidden_tests, "hidden test")}`;
  let status = null;
  if (problem.imported) {
    const link = h("a", { href: `/teach/problems/${problem.imported.problem_id}` }, "your copy");
    status =
      problem.imported.version < set.version
        ? h(
            "span",
            { class: "meta update" },
            "Imported version ",
            String(problem.imported.version),
            ": ",
            link,
            " (update available)",
          )
        : h("span", { class: "meta" }, "Imported: ", link);
  }
  return h(
    "li",
    { class: "set-problem" },
    h("input", { type: "checkbox", id, name: "problems", value: problem.id }),
    h("label", { for: id }, problem.title),
    h("span", { class: "meta" }, `${languageName(problem.language)} · ${tests}`),
    status,
  );
}

function classBoxes(set, classes) {
  if (!classes.length)
    return h("p", { class: "hint" }, "You have no classes yet; the problems are imported unassigned.");
  return h(
    "ul",
    { class: "set-classes" },
    classes.map((c) => {
      const id = `set-${set.id}-class-${c.id}`;
      return h(
        "li",
        {},
        h("input", { type: "checkbox", id, name: "classes", value: c.id }),
        h("label", { for: id }, c.name),
      );
    }),
  );
}

function outcomeText(item) {
  const verb =
    { created: "Created", updated: "Updated", unchanged: "Already up to date:" }[item.outcome] || item.outcome;
  return h("li", {}, `${verb} `, h("a", { href: `/teach/problems/${item.problem_id}` }, `problem ${item.problem_id}`));
}

function setCard(set, classes) {
  const form = h("form", { class: "card stack problem-set", "data-set": set.id, novalidate: true });
  const error = h("p", { class: "form-error", id: `set-${set.id}-error`, role: "alert", hidden: true });
  const result = h("div", { class: "set-result", role: "status" });
  const replaceId = `set-${set.id}-replace`;
  form.append(
    h("h2", {}, `${set.name} `, h("span", { class: "meta" }, `version ${set.version}`)),
    h(
      "p",
      { class: "meta" },
      `From ${set.publisher.name} (key ${set.publisher.fingerprint}), received ${when(set.received_at)}`,
    ),
    error,
    h(
      "fieldset",
      {},
      h("legend", {}, "Problems"),
      h(
        "ul",
        { class: "set-problems" },
        set.problems.map((p) => problemRow(set, p)),
      ),
    ),
    h("fieldset", {}, h("legend", {}, "Show to classes"), classBoxes(set, classes)),
    h(
      "p",
      { class: "field inline" },
      h("input", { type: "checkbox", id: replaceId, name: "replace" }),
      h("label", { for: replaceId }, "Replace my own edits of problems imported before"),
    ),
    h("button", { type: "submit", class: "primary" }, "Import chosen problems"),
    result,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    hideError(error);
    const problems = $$('input[name="problems"]:checked', form).map((box) => Number(box.value));
    const chosenClasses = $$('input[name="classes"]:checked', form).map((box) => Number(box.value));
    if (!problems.length) {
      showError(error, { message: "Tick at least one problem to import." });
      return;
    }
    busy(form.querySelector("button[type=submit]"), async () => {
      replace(result, h("p", { class: "hint" }, `Importing ${plural(problems.length, "problem")}…`));
      try {
        const { imported } = await api("POST", `/api/problem-sets/${set.id}/import`, {
          problems,
          classes: chosenClasses,
          replace: form.replace.checked,
        });
        replace(result, h("p", { class: "notice" }, "Imported."), h("ul", {}, imported.map(outcomeText)));
        await load();
      } catch (failure) {
        replace(result);
        showError(error, failure);
      }
    });
  });
  return form;
}

async function load() {
  const [{ problem_sets: sets }, { classes }] = await Promise.all([
    api("GET", "/api/problem-sets"),
    api("GET", "/api/classes"),
  ]);
  const results = new Map($$("form.problem-set", list).map((form) => [form.dataset.set, $(".set-result", form)]));
  replace(
    list,
    sets.length
      ? sets.map((set) => {
          const card = setCard(set, classes);
          const previous = results.get(String(set.id));
          if (previous) $(".set-result", card).replaceWith(previous);
          return card;
        })
      : h(
          "p",
          { class: "empty-state" },
          "No problem sets received yet. They arrive from the central instance once an admin trusts its key.",
        ),
  );
}

load().catch((error) => replace(list, h("p", { class: "notice error", role: "alert" }, error.message)));
