// Wiring every page shares: the log-out button. Each page's module imports this first.
import { api } from "./api.js";
import { $ } from "./dom.js";
import { flushAll, forgetLocalDrafts } from "./drafts.js";
import { startExamBanner } from "./exam-banner.js";

const logout = $("#logout-button");
if (logout) {
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    await flushAll();
    try {
      await api("POST", "/api/auth/logout", {});
    } catch {
      // Logged out already, or offline: either way leave this browser logged out.
    }
    // A classroom computer is shared: leave no copy of this student's code in the browser.
    forgetLocalDrafts();
    location.assign("/login");
  });
}

startExamBanner();
// Maintenance mode: the notice comes with the page, and appears or goes while the page is open.
const maintenance = $("#maintenance-banner");
if (maintenance) {
  const every = Math.max(1, Number(maintenance.dataset.pollS) || 15) * 1000;
  const check = async () => {
    try {
      const state = await api("GET", "/api/maintenance");
      $("#maintenance-message").textContent = state.message;
      maintenance.hidden = !state.on;
    } catch {
      // Offline or restarting: keep showing what we knew.
    }
  };
  setInterval(check, every);
}

export const role = document.body.dataset.role || "";
export const isStaff = role === "teacher" || role === "admin";
export const userId = Number(document.body.dataset.userId) || null;
