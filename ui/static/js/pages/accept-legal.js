import "../app.js";
import { api } from "../api.js";
import { $, busy, hideError, nextPath, showError } from "../dom.js";

const form = $("#accept-form");
const error = $("#accept-error");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  hideError(error);
  if (!form.accept_terms.checked || !form.accept_privacy.checked) {
    const field = form.accept_terms.checked ? "accept_privacy" : "accept_terms";
    showError(error, { message: "Please tick both boxes to carry on.", field }, form);
    return;
  }
  busy(form.querySelector("button[type=submit]"), async () => {
    try {
      await api("POST", "/api/me/accept-legal", {
        accept_terms: form.accept_terms.value,
        accept_privacy: form.accept_privacy.value,
      });
      location.assign(nextPath("/"));
    } catch (failure) {
      showError(error, failure, form);
    }
  });
});

$("#logout-instead").addEventListener("click", async () => {
  try {
    await api("POST", "/api/auth/logout", {});
  } finally {
    location.assign("/login");
  }
});
