import { role } from "../app.js";
import { api } from "../api.js";
import { $, $$ } from "../dom.js";
import { desktopBridge } from "../desktop-bridge.js";

const choice = $("#class-choice");
if (choice) {
  choice.addEventListener("change", () =>
    location.assign(`/teach/classroom?class=${encodeURIComponent(choice.value)}`),
  );
}

const status = $("#backup-status");
const backupButton = $("#backup-button");
let bridge = null;

function say(text) {
  status.textContent = text;
}

// In a plain browser only an admin may back up (POST /api/admin/backups); the window's bridge
// runs the same backup as `labrunner backup` for the teacher at the machine.
backupButton.hidden = role !== "admin";

async function backupThroughApi() {
  say("Backing up…");
  const made = await api("POST", "/api/admin/backups", {});
  say(`Backup written: ${made.archive}`);
}

async function backupThroughWindow() {
  const started = Date.now();
  let state = await bridge.backup_start();
  while (state.state === "running") {
    say(`Backing up… ${Math.round((Date.now() - started) / 1000)} s`);
    await new Promise((done) => setTimeout(done, 500));
    state = await bridge.backup_status();
  }
  say(state.message);
}

backupButton.addEventListener("click", async () => {
  backupButton.disabled = true;
  try {
    await (bridge ? backupThroughWindow() : backupThroughApi());
  } catch (failure) {
    say(`Backup failed: ${failure.message}`);
  } finally {
    backupButton.disabled = false;
  }
});

$("#open-browser").addEventListener("click", () => bridge.open_in_browser(location.pathname + location.search));
$("#open-folder").addEventListener("click", () => bridge.open_data_folder());

bridge = await desktopBridge();
if (bridge) {
  for (const el of $$("[data-window-only]")) el.hidden = false;
  backupButton.hidden = false;
  document.body.dataset.window = "true";
}
