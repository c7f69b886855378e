import "../app.js";
import { api } from "../api.js";
import { $, h, replace } from "../dom.js";
import { submissionTable } from "../tables.js";

const list = $("#submission-list");
try {
  const { submissions } = await api("GET", "/api/submissions");
  replace(list, submissionTable(submissions, { caption: "Your submissions, newest first" }));
} catch (error) {
  replace(list, h("p", { class: "notice error", role: "alert" }, error.message));
}
