// The quota overrides partial (pages/_overrides.html): a class's limits, their defaults and the
// class's own values, saved in one PUT. Works in any page that includes the partial: the class
// page names its class, the admin dashboard picks one and also lists every override in force.
import { api } from "../api.js";
import { $, busy, h, hideError, replace, showError, when } from "../dom.js";

const LABELS = {
  runs_per_user_per_minute: "Runs a minute",
  submissions_per_user_per_minute: "Submissions a minute (all problems)",
  max_jobs_in_flight_per_user: "Programs waiting or running at once",
  submissions_per_problem_per_minute: "Submissions to one problem a minute",
  submissions_per_problem_per_hour: "Submissions to one problem an hour",
};

const root = $("[data-overrides]");
if (root) setup(root);

async function setup(root) {
  const form = $("[data-overrides-form]", root);
  const error = $("#overrides-error", root);
  let classId = Number(root.dataset.classId) || null;
  if (!classId) classId = await pickClass(root, (id) => load(root, (classId = id)));
  if (!classId) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return; // another class's values are on their way
    hideError(error);
    busy(form.querySelector("button[type=submit]"), async () => {
      try {
        const reply = await api("PUT", `/api/classes/${classId}/limits`, body(form));
        render(root, reply);
        $("[data-overrides-status]", root).textContent = "Saved: the new limits apply from the next run.";
        await listAll(root);
      } catch (failure) {
        showError(error, failure, form);
      }
    });
  });
  await load(root, classId);
  await listAll(root);
}

/** The admin dashboard has no class of its own: choose one of all classes. */
async function pickClass(root, onPick) {
  const { classes } = await api("GET", "/api/classes");
  if (!classes.length) {
    replace($("[data-overrides-rows]", root), h("tr", {}, h("td", { colspan: 3, class: "hint" }, "No classes yet.")));
    return null;
  }
  const picker = $("[data-overrides-picker]", root);
  const select = $("select", picker);
  replace(
    select,
    classes.map((klass) => h("option", { value: klass.id }, klass.name)),
  );
  picker.hidden = false;
  select.addEventListener("change", () => onPick(Number(select.value)));
  return classes[0].id;
}

async function load(root, classId) {
  // Busy until the chosen class's values are in, so nothing typed meanwhile is overwritten.
  $("[data-overrides-form]", root).setAttribute("aria-busy", "true");
  try {
    render(root, await api("GET", `/api/classes/${classId}/limits`));
  } catch (failure) {
    showError($("#overrides-error", root), failure);
  }
}

function render(root, { limits }) {
  const rows = limits.map((limit) => {
    const id = `override-${limit.name}`;
    const value = limit.override ? String(limit.override.value) : "";
    const until = limit.override?.until ? ` until ${when(limit.override.until)}` : "";
    return h(
      "tr",
      {},
      h("th", { scope: "row" }, h("label", { for: id, title: limit.help }, LABELS[limit.name] || limit.name)),
      h("td", {}, limit.default === 0 ? "no limit" : String(limit.default)),
      h(
        "td",
        {},
        h("input", { id, name: limit.name, type: "number", min: 0, max: 10000, step: 1, value }),
        until && h("span", { class: "meta" }, until),
      ),
    );
  });
  replace($("[data-overrides-rows]", root), rows);
  $("[data-overrides-form]", root).removeAttribute("aria-busy");
}

/** Every limit in one request: a number sets it, empty removes the class's value (the default again). */
function body(form) {
  const limits = {};
  for (const input of form.querySelectorAll("input[type=number]")) {
    limits[input.name] = input.value.trim() === "" ? null : Number(input.value);
  }
  const until = form.until.value ? new Date(form.until.value).toISOString() : null;
  return { limits, until };
}

/** Admins also see every override in force (teachers get 403 here and the list stays hidden). */
async function listAll(root) {
  if (document.body.dataset.role !== "admin") return;
  const { overrides } = await api("GET", "/api/admin/overrides");
  const section = $("[data-overrides-all]", root);
  section.hidden = false;
  replace(
    $("[data-overrides-list]", section),
    overrides.length
      ? overrides.map((o) =>
          h(
            "li",
            {},
            `${o.class_name ? `Class ${o.class_name}` : `Student ${o.username}`}: ${LABELS[o.name] || o.name} `,
            h("strong", {}, o.value === 0 ? "no limit" : String(o.value)),
            o.until ? ` until ${when(o.until)}` : "",
          ),
        )
      : h("li", { class: "hint" }, "None."),
  );
}
