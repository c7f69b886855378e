// A live run: the program starts at once; what it prints appears as it comes, lines typed here go
// to its input, a graphical program's window is shown and played with the keyboard and mouse, and
// Stop ends it. One WebSocket per run; the server says how it ended.
import { api } from "./api.js";
import { waitOut } from "./countdown.js";
import { $, h } from "./dom.js";

const ENDINGS = {
  finished: "Finished",
  runtime_error: "Runtime error",
  compile_error: "Syntax or compile error",
  stopped: "Stopped",
  idle: "Stopped",
  time_limit: "Stopped",
  memory_limit: "Out of memory",
  output_limit: "Too much output",
  error: "Could not run",
};

export function setupLive(bench) {
  const button = $("#live-button");
  if (!button) return;
  let current = null;
  button.addEventListener("click", async () => {
    if (current && !current.ended) return;
    current = await startLive(bench);
  });
  $("#live-stop").addEventListener("click", () => current?.send({ type: "stop" }));
  $("#live-eof").addEventListener("click", () => current?.send({ type: "eof" }));
  $("#live-close-window").addEventListener("click", () => current?.send({ type: "close_window" }));
  $("#live-input-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#live-input");
    if (!current || current.ended) return;
    const line = input.value + "\n";
    // The console does not echo (it is not a terminal on this computer): show what was typed.
    $("#live-output").append(h("span", { class: "typed" }, line));
    current.send({ type: "stdin", text: line });
    input.value = "";
  });
  setupWindowInput(() => current);
}

async function startLive(bench) {
  const status = $("#live-status");
  const section = $("#live-section");
  const output = $("#live-output");
  section.hidden = false;
  output.replaceChildren();
  $("#live-window-box").hidden = true;
  const code = bench.editor.getCode();
  if (!code.trim()) {
    status.textContent = "Write some code first, then press Run live.";
    return null;
  }
  status.textContent = "Starting…";
  const body = { language: bench.language, code };
  const files = bench.files.ids();
  if (files.length) body.files = files;
  let run;
  try {
    run = await api("POST", "/api/live-runs", body);
  } catch (error) {
    if (!waitOut(error, $("#live-button"), status, "run live")) status.textContent = error.message;
    return null;
  }
  section.dataset.socket = run.socket;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${run.socket}`);
  socket.binaryType = "blob";
  const session = { ended: false, send: (message) => socket.readyState === 1 && socket.send(JSON.stringify(message)) };
  let frameUrl = null;
  let frameWanted = false;
  setRunning(true);
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") {
      if (!frameWanted) return;
      frameWanted = false;
      const img = $("#live-window");
      const previous = frameUrl;
      frameUrl = URL.createObjectURL(event.data);
      img.src = frameUrl;
      if (previous) URL.revokeObjectURL(previous);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "started") {
      status.textContent = "Running: type in the box below when your program asks.";
      if (message.graphical) {
        $("#live-window-box").hidden = false;
        status.textContent = "Running: click the window, then play with the keyboard and mouse.";
      }
      $("#live-input").focus();
    } else if (message.type === "output") {
      output.append(message.stream === "stderr" ? h("span", { class: "stderr" }, message.text) : message.text);
      output.scrollTop = output.scrollHeight;
    } else if (message.type === "frame") {
      frameWanted = true;
      $("#live-window-box").hidden = false;
    } else if (message.type === "ended") {
      session.ended = true;
      if (message.compile_output) output.append(h("span", { class: "stderr" }, message.compile_output));
      status.textContent = `${ENDINGS[message.ending] || "Ended"}: ${message.message}`;
      status.dataset.ending = message.ending;
      setRunning(false);
    } else if (message.type === "error") {
      status.textContent = message.message;
    }
  });
  socket.addEventListener("close", () => {
    if (!session.ended) {
      session.ended = true;
      status.textContent = "The connection to the live run was lost; press Run live to start again.";
      setRunning(false);
    }
  });
  return session;
}

function setRunning(running) {
  $("#live-button").disabled = running;
  $("#live-stop").hidden = !running;
  $("#live-input").disabled = !running;
  for (const el of $("#live-input-form").querySelectorAll("button")) el.disabled = !running;
}

/** Keys and the mouse on the shown window go to the program, in the window's own pixels. */
function setupWindowInput(current) {
  const img = $("#live-window");
  const key = (down) => (event) => {
    const session = current();
    if (!session || session.ended) return;
    event.preventDefault();
    if (event.repeat && !down) return;
    session.send({ type: "key", key: event.key, code: event.code, down });
  };
  img.addEventListener("keydown", key(true));
  img.addEventListener("keyup", key(false));
  let lastMove = 0;
  const pointer = (kind) => (event) => {
    const session = current();
    if (!session || session.ended || !img.naturalWidth) return;
    if (kind === "move") {
      const now = performance.now();
      if (now - lastMove < 50) return; // a person's motion at 20 a second is plenty
      lastMove = now;
    }
    // Measured before focusing: focus could scroll the page under the event's coordinates.
    const box = img.getBoundingClientRect();
    const x = Math.round(((event.clientX - box.left) * img.naturalWidth) / box.width);
    const y = Math.round(((event.clientY - box.top) * img.naturalHeight) / box.height);
    if (kind !== "move") {
      img.focus({ preventScroll: true });
      event.preventDefault();
    }
    const inside = (v, max) => Math.max(0, Math.min(max - 1, v));
    session.send({
      type: "pointer",
      kind,
      x: inside(x, img.naturalWidth),
      y: inside(y, img.naturalHeight),
      button: kind === "move" ? 0 : event.button + 1,
    });
  };
  img.addEventListener("mousedown", pointer("down"));
  img.addEventListener("mouseup", pointer("up"));
  img.addEventListener("mousemove", pointer("move"));
  img.addEventListener("contextmenu", (event) => event.preventDefault());
}
