import "../app.js";
import { api } from "../api.js";
import { waitOut } from "../countdown.js";
import { $, busy, hideError, nextPath, showError } from "../dom.js";

const form = $("#login-form");
const error = $("#login-error");
$("#username").focus();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  hideError(error);
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError(
      error,
      { message: "Type your username and your password.", field: username ? "password" : "username" },
      form,
    );
    return;
  }
  const button = form.querySelector("button[type=submit]");
  busy(button, async () => {
    try {
      const { user } = await api("POST", "/api/auth/login", { username, password });
      const fallback = user.role === "student" ? "/" : "/teach";
      location.assign(
        user.pending_legal.length ? `/accept-legal?next=${encodeURIComponent(nextPath(fallback))}` : nextPath(fallback),
      );
    } catch (failure) {
      showError(error, failure, form);
      return failure;
    }
    return null;
  }).then((failure) => waitOut(failure, button, error, "log in"));
});
