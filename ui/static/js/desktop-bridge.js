// The desktop window's trusted bridge (pywebview's js_api, `window.pywebview.api`); null in a
// plain browser. pywebview injects it after the page has loaded, then fires `pywebviewready`.

const WAIT_MS = 5000;

function ready() {
  const api = window.pywebview && window.pywebview.api;
  return api && typeof api.backup_status === "function" ? api : null;
}

export function desktopBridge() {
  return new Promise((resolve) => {
    if (ready()) {
      resolve(ready());
      return;
    }
    window.addEventListener("pywebviewready", () => resolve(ready()), { once: true });
    setTimeout(() => resolve(ready()), WAIT_MS);
  });
}
