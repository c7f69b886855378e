import "../app.js";
import { api } from "../api.js";
import { $, h, replace } from "../dom.js";
import { submissionTable } from "../tables.js";

const params = new URLSearchParams(location.search);
const problemSelect = $("#filter-problem");
const classSelect = $("#filter-class");
const list = $("#submission-list");

async function start() {
  const [{ problems }, { classes }] = await Promise.all([api("GET", "/api/problems"), api("GET", "/api/classes")]);
  problemSelect.append(...problems.map((p) => h("option", { value: p.id }, p.title)));
  classSelect.append(...classes.map((c) => h("option", { value: c.id }, c.name)));
  problemSelect.value = params.get("problem_id") || "";
  classSelect.value = params.get("class_id") || "";
  for (const select of [problemSelect, classSelect]) {
    select.addEventListener("change", () => {
      params.set(select.name, select.value);
      if (!select.value) params.delete(select.name);
      history.replaceState(null, "", `?${params}`);
      load();
    });
  }
  $("#clear-student").addEventListener("click", (event) => {
    event.preventDefault();
    params.delete("user_id");
    history.replaceState(null, "", `?${params}`);
    load();
  });
  await load();
}

async function load() {
  list.setAttribute("aria-busy", "true");
  const query = new URLSearchParams();
  for (const key of ["problem_id", "class_id", "user_id"]) if (params.get(key)) query.set(key, params.get(key));
  try {
    const { submissions } = await api("GET", `/api/submissions?${query}`);
    const userId = params.get("user_id");
    $("#student-filter").hidden = !userId;
    if (userId) $("#student-name").textContent = `Student: ${submissions[0]?.username ?? `#${userId}`}.`;
    replace(list, submissionTable(submissions, { showStudent: true, caption: "Submissions, newest first" }));
  } catch (error) {
    replace(list, h("p", { class: "notice error", role: "alert" }, error.message));
  }
}

start().catch((error) => replace(list, h("p", { class: "notice error", role: "alert" }, error.message)));
