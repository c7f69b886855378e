import "../app.js";
import { api } from "../api.js";
import { $, h, replace } from "../dom.js";
import { setupLive } from "../live.js";
import { resumeRun, setupWorkbench, STARTERS } from "../workbench.js";

const select = $("#language");
const { languages } = await api("GET", "/api/languages");
replace(
  select,
  languages.map((lang) => h("option", { value: lang.id }, `${lang.name} ${lang.version}`)),
);

const bench = await setupWorkbench({
  draftUrl: "/api/drafts/scratch",
  draftKey: "scratch",
  language: "python",
  label: "Code editor: scratchpad",
  languageFromDraft: true,
  keys: { "Mod-Enter": () => bench.run() },
});
select.value = bench.language;
bench.editor.setLanguage(bench.language);
select.addEventListener("change", () => {
  const code = bench.editor.getCode();
  // An untouched starter is swapped for the new language's; real code is kept as it is.
  if (!code.trim() || Object.values(STARTERS).includes(code)) bench.editor.setCode(STARTERS[select.value] || "");
  bench.setLanguage(select.value);
});
$("#run-button").addEventListener("click", () => bench.run());
setupLive(bench);
resumeRun(bench);
