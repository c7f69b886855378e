import "../app.js";
import { api } from "../api.js";
import { $, busy, hideError, showError } from "../dom.js";

const form = $("#setup-form");
const error = $("#setup-error");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  hideError(error);
  const body = {
    token: form.dataset.token,
    admin_username: form.admin_username.value.trim(),
    admin_password: form.admin_password.value,
    teacher_username: form.teacher_username.value.trim(),
    teacher_password: form.teacher_password.value,
    // The checkbox's value is the version shown on this page: accepting names what was read.
    accept_terms: form.accept_terms.checked ? form.accept_terms.value : "",
    accept_privacy: form.accept_privacy.checked ? form.accept_privacy.value : "",
  };
  const empty = ["admin_username", "admin_password", "teacher_username", "teacher_password"].find((f) => !body[f]);
  if (empty) {
    showError(error, { message: "Please fill in every field.", field: empty }, form);
    return;
  }
  if (!body.accept_terms || !body.accept_privacy) {
    const field = body.accept_terms ? "accept_privacy" : "accept_terms";
    showError(error, { message: "Please read the terms and the privacy notice, then tick both boxes.", field }, form);
    return;
  }
  busy(form.querySelector("button[type=submit]"), async () => {
    try {
      const done = await api("POST", "/api/desktop/setup", body);
      location.assign(done.next);
    } catch (failure) {
      showError(error, failure, form);
    }
  });
});
