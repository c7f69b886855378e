// Staff accounts (teachers and admins): a list with disable/enable and password reset, and a form
// to create one. It runs wherever the partial _admin_accounts.html is included (its own page or
// the admin dashboard), and does nothing on a page without it.
import "../app.js";
import { api } from "../api.js";
import { $, busy, h, hideError, replace, showError, when } from "../dom.js";

const root = $("#staff-accounts");
if (root) start();

function start() {
  const status = $("#staff-status", root);
  const list = $("#staff-list", root);
  const filter = $("#staff-role-filter", root);
  const form = $("#staff-form", root);
  const formError = $("#staff-error", root);
  const me = Number(document.body.dataset.userId) || null;

  async function load() {
    const query = filter.value ? `?role=${encodeURIComponent(filter.value)}` : "";
    try {
      const data = await api("GET", `/api/admin/accounts${query}`);
      replace(list, table(data.accounts));
    } catch (error) {
      replace(list, h("p", { class: "form-error", role: "alert" }, error.message));
    }
  }

  function table(accounts) {
    if (!accounts.length) return h("p", { class: "empty-state" }, "No accounts to show.");
    return h(
      "table",
      { class: "list", id: "staff-table" },
      h("caption", { class: "visually-hidden" }, "Teacher and admin accounts"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Username", "Role", "Created", "Last login", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h("tbody", {}, accounts.map(row)),
    );
  }

  function row(account) {
    const self = account.id === me;
    return h(
      "tr",
      { "data-account-id": account.id },
      h("th", { scope: "row" }, account.username, self ? h("span", { class: "meta" }, " (you)") : null),
      h("td", {}, account.role === "admin" ? "Admin" : "Teacher"),
      h("td", {}, when(account.created_at)),
      h("td", {}, account.last_login_at ? when(account.last_login_at) : h("span", { class: "meta" }, "not known")),
      h("td", {}, account.disabled ? h("strong", {}, "Disabled") : "Active"),
      h(
        "td",
        {},
        h(
          "div",
          { class: "row-actions" },
          self
            ? null
            : h(
                "button",
                {
                  type: "button",
                  class: account.disabled ? "link-button" : "link-button danger",
                  "aria-label": `${account.disabled ? "Enable" : "Disable"} ${account.username}`,
                  onclick: (event) => setDisabled(event.currentTarget, account, !account.disabled),
                },
                account.disabled ? "Enable" : "Disable",
              ),
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "aria-label": `Reset the password of ${account.username}`,
              onclick: (event) => resetPassword(event.currentTarget, account),
            },
            "Reset password",
          ),
        ),
      ),
    );
  }

  async function setDisabled(button, account, disabled) {
    const question = disabled
      ? `Disable ${account.username}? They are logged out everywhere at once and their API tokens stop working.`
      : `Enable ${account.username} again? They can log in with their password.`;
    if (!confirm(question)) return;
    await busy(button, async () => {
      try {
        await api("PATCH", `/api/admin/accounts/${account.id}`, { disabled });
        status.textContent = `${account.username} is ${disabled ? "disabled" : "enabled"}.`;
        await load();
      } catch (error) {
        status.textContent = error.message;
      }
    });
  }

  async function resetPassword(button, account) {
    const question = `Give ${account.username} a new password? The current one stops working, their other sessions end and their API tokens are revoked.`;
    if (!confirm(question)) return;
    await busy(button, async () => {
      try {
        const result = await api("POST", `/api/admin/accounts/${account.id}/password`, {});
        showSecret(result.account.username, result.password);
        status.textContent = `${account.username} has a new password (shown above).`;
        await load();
      } catch (error) {
        status.textContent = error.message;
      }
    });
  }

  // The one time a generated password is seen: shown with a copy button, until hidden.
  const secret = $("#staff-secret", root);
  const secretText = $("#staff-secret-password", root);

  function showSecret(username, password) {
    $("#staff-secret-user", root).textContent = username;
    secretText.textContent = password;
    secret.hidden = false;
    secret.scrollIntoView({ block: "nearest" });
  }

  $("#staff-secret-hide", root).addEventListener("click", () => {
    secretText.textContent = "";
    secret.hidden = true;
  });

  $("#staff-secret-copy", root).addEventListener("click", async () => {
    const text = secretText.textContent;
    try {
      // Only in a secure context (https, localhost): on a plain-http LAN address, select it instead.
      await navigator.clipboard.writeText(text);
      status.textContent = "Password copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(secretText);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      const copied = document.execCommand("copy");
      status.textContent = copied ? "Password copied." : "Press Ctrl+C to copy the selected password.";
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    hideError(formError);
    const data = { username: form.username.value.trim(), role: form.role.value };
    if (form.password.value) data.password = form.password.value;
    await busy(form.querySelector("button[type=submit]"), async () => {
      try {
        const result = await api("POST", "/api/admin/accounts", data);
        form.reset();
        if (result.password) showSecret(result.account.username, result.password);
        status.textContent = `${result.account.username} can now log in as ${result.account.role === "admin" ? "an admin" : "a teacher"}.`;
        await load();
      } catch (error) {
        showError(formError, error, form);
      }
    });
  });

  filter.addEventListener("change", load);
  load();
}
