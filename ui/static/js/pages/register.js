import "../app.js";
import { api } from "../api.js";
import { $, busy, hideError, showError } from "../dom.js";

const form = $("#register-form");
const error = $("#register-error");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  hideError(error);
  const body = {
    username: form.username.value.trim(),
    password: form.password.value,
    birthdate: form.birthdate.value,
    // The checkbox's value is the version shown on this page: accepting names what was read.
    accept_terms: form.accept_terms.checked ? form.accept_terms.value : "",
    accept_privacy: form.accept_privacy.checked ? form.accept_privacy.value : "",
  };
  const missing = !body.username ? "username" : !body.password ? "password" : !body.birthdate ? "birthdate" : null;
  if (missing) {
    const what = { username: "a username", password: "a password", birthdate: "your date of birth" }[missing];
    showError(error, { message: `Please fill in ${what}.`, field: missing }, form);
    return;
  }
  if (!body.accept_terms || !body.accept_privacy) {
    const field = body.accept_terms ? "accept_privacy" : "accept_terms";
    showError(
      error,
      { message: "Please read the terms of use and the privacy notice, then tick both boxes.", field },
      form,
    );
    return;
  }
  busy(form.querySelector("button[type=submit]"), async () => {
    try {
      await api("POST", "/api/auth/register", body);
      await api("POST", "/api/auth/login", { username: body.username, password: body.password });
      location.assign("/");
    } catch (failure) {
      showError(error, failure, form);
    }
  });
});
