// The editor with everything around it that the problem page and the scratchpad share: the
// server-saved draft, the input box, uploaded files, Run with live status, and the output.
import { createEditor } from "/static/vendor/codemirror.js";
import { api } from "./api.js";
import { isWaiting, waitOut } from "./countdown.js";
import { $, announce, h, replace } from "./dom.js";
import { DraftKeeper, SAVE_STATES } from "./drafts.js";
import { describeFinishedRun, describeStatus, followJob } from "./jobs.js";
import { renderRun } from "./results.js";

export const STARTERS = {
  python: "",
  c: "#include <stdio.h>\n\nint main(void) {\n    \n    return 0;\n}\n",
  cpp: "#include <iostream>\nusing namespace std;\n\nint main() {\n    \n    return 0;\n}\n",
  java: "public class Main {\n    public static void main(String[] args) {\n        \n    }\n}\n",
  javascript: "",
};

/**
 * Set up the workbench. options: draftUrl, draftKey, language, limits, label, keys (editor
 * shortcuts), languageFromDraft (the scratchpad), starter (the text to start from when there is
 * no draft: a teacher's starter code). Returns an object the page drives.
 */
export async function setupWorkbench({
  draftUrl,
  draftKey,
  language,
  limits = {},
  label,
  keys = {},
  languageFromDraft = false,
  starter = "",
}) {
  const stdin = $("#stdin");
  const saveState = $("#save-state");
  const conflict = $("#conflict");
  const bench = { language, limits, busy: false };

  const keeper = new DraftKeeper({
    url: draftUrl,
    key: draftKey,
    onStatus(state, error) {
      saveState.textContent = state === "error" && error ? `Not saved: ${error.message}` : SAVE_STATES[state];
      saveState.dataset.state = state;
      conflict.hidden = state !== "conflict";
      // While two versions wait for a choice, nothing more is typed that the choice could throw away.
      const locked = state === "conflict";
      if (locked !== stdin.readOnly && bench.editor) {
        bench.editor.setReadOnly(locked);
        stdin.readOnly = locked;
      }
    },
  });
  const fields = () => ({ language: bench.language, code: editor.getCode(), stdin: stdin.value });
  const editor = createEditor($("#editor"), {
    language,
    label,
    readOnly: true, // until the saved draft is in, so nothing typed is overwritten by it
    onChange: () => keeper.update(fields()),
    keys,
  });
  stdin.addEventListener("input", () => keeper.update(fields()));

  $("#take-server").addEventListener("click", async () => {
    const draft = await keeper.takeServer();
    if (draft) show(draft);
  });
  $("#keep-mine").addEventListener("click", () => keeper.keepMine());

  function show(draft) {
    editor.setCode(draft.code);
    stdin.value = draft.stdin || "";
    // A problem's language is the teacher's choice; only the scratchpad remembers the student's.
    if (languageFromDraft && draft.language) bench.language = draft.language;
  }

  try {
    const draft = await keeper.load();
    if (draft) show(draft);
    else editor.setCode(starter || STARTERS[language] || "");
  } catch (error) {
    announce(`Could not load your saved code: ${error.message}`, "error");
  }
  bench.editor = editor;
  editor.setReadOnly(keeper.blocked);

  bench.keeper = keeper;
  bench.setLanguage = (id) => {
    bench.language = id;
    editor.setLanguage(id);
    keeper.update(fields());
  };
  bench.files = await setupFiles();
  bench.run = () => runCode(bench);
  return bench;
}

/** Uploaded files for Run, when this appliance has the files API. */
async function setupFiles() {
  const section = $("#files");
  const chosen = new Set();
  if (!section) return { ids: () => [] };
  let listing;
  try {
    listing = await api("GET", "/api/files");
  } catch {
    return { ids: () => [] }; // no files API here (yet): the section stays hidden
  }
  section.hidden = false;
  const list = $("#file-list");
  const error = $("#file-error");
  const render = (files) =>
    replace(
      list,
      files.length
        ? files.map((file) =>
            h(
              "li",
              {},
              h("input", {
                type: "checkbox",
                id: `file-${file.id}`,
                checked: chosen.has(file.id),
                onchange: (event) => (event.target.checked ? chosen.add(file.id) : chosen.delete(file.id)),
              }),
              h(
                "label",
                { for: `file-${file.id}` },
                `${file.name} `,
                h("span", { class: "meta" }, `(${size(file.size)})`),
              ),
            ),
          )
        : h("li", { class: "hint" }, "No files yet."),
    );
  render(listing.files || []);
  $("#file-input").addEventListener("change", async (event) => {
    error.hidden = true;
    for (const file of event.target.files) {
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const uploaded = await api("POST", "/api/files", form);
        chosen.add((uploaded.file || uploaded).id);
      } catch (failure) {
        error.textContent = `${file.name}: ${failure.message}`;
        error.hidden = false;
      }
    }
    event.target.value = "";
    render((await api("GET", "/api/files")).files || []);
  });
  return { ids: () => [...chosen] };
}

function size(bytes) {
  if (bytes === undefined || bytes === null) return "";
  return bytes < 1024
    ? `${bytes} B`
    : bytes < 1048576
      ? `${Math.round(bytes / 1024)} KB`
      : `${(bytes / 1048576).toFixed(1)} MB`;
}

/** Follow a job, showing its live status in #job-status; resolves with the final result. */
export async function watch(kind, id) {
  const status = $("#job-status");
  status.textContent = describeStatus({ status: "queued", position: null });
  try {
    const job = await followJob(kind, id, (state) => {
      status.textContent = describeStatus(state);
    });
    status.textContent = "";
    return job;
  } catch (error) {
    status.textContent = error.message;
    throw error;
  }
}

async function runCode(bench) {
  const button = $("#run-button");
  if (button.disabled) return;
  const status = $("#job-status");
  const section = $("#output-section");
  button.disabled = true;
  try {
    const body = { language: bench.language, code: bench.editor.getCode(), stdin: $("#stdin").value };
    if (!body.code.trim()) {
      status.textContent = "Write some code first, then press Run.";
      return;
    }
    const files = bench.files.ids();
    if (files.length) body.files = files;
    const queued = await api("POST", "/api/runs", body);
    sessionStorage.setItem(runKey(), String(queued.id));
    const run = await withStop(queued.id, () => watch("runs", queued.id));
    section.hidden = false;
    renderRun($("#output"), run, bench.limits);
    reveal(section);
    // Said in the live region; focus stays in the editor so typing can go on.
    status.textContent = describeFinishedRun(run);
  } catch (error) {
    if (!waitOut(error, button, status, "run")) status.textContent = error.message;
  } finally {
    if (!isWaiting(button)) button.disabled = false;
  }
}

/** While a run waits or runs, its Stop button ends it (the page goes on following it to its end). */
async function withStop(runId, following) {
  const stop = $("#run-stop");
  if (!stop) return following();
  const press = async () => {
    stop.disabled = true;
    try {
      await api("POST", `/api/runs/${runId}/stop`);
    } catch (error) {
      $("#job-status").textContent = error.message;
    }
  };
  stop.disabled = false;
  stop.hidden = false;
  stop.addEventListener("click", press);
  try {
    return await following();
  } finally {
    stop.removeEventListener("click", press);
    stop.hidden = true;
  }
}

/**
 * Bring a result the student asked for into view (it may start below the window), unless enough of
 * it is on screen already. Focus stays where it is, so typing goes on in the editor.
 */
export function reveal(element) {
  const { top, height } = element.getBoundingClientRect();
  if (top >= 0 && top + Math.min(height, window.innerHeight / 3) <= window.innerHeight) return;
  element.scrollIntoView({ block: "start" });
}

const runKey = () => `labrunner:lastrun:${location.pathname}`;

/** After a reload, show the last run of this page again (following it if still going). */
export async function resumeRun(bench) {
  const id = sessionStorage.getItem(runKey());
  if (!id) return;
  try {
    const run = await api("GET", `/api/runs/${id}`);
    const final = run.status === "done" || run.status === "failed" ? run : await watch("runs", id);
    $("#output-section").hidden = false;
    renderRun($("#output"), final, bench.limits);
  } catch {
    sessionStorage.removeItem(runKey());
  }
}
