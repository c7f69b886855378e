// Following a run or submission until it finishes: live status and queue position from the
// server's event stream, then the full result. If the stream cannot be used (an old proxy, a
// server restart mid-way), it falls back to asking with ?wait=, which also survives outages.
import { api } from "./api.js";
import { stoppedLine } from "./results.js";

const FINAL = new Set(["done", "failed"]);

/** kind: "runs" | "submissions". onStatus({status, position}) is called on every change. */
export function followJob(kind, id, onStatus = () => {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = async () => {
      if (settled) return;
      settled = true;
      source.close();
      try {
        resolve(await poll(kind, id, onStatus));
      } catch (error) {
        reject(error);
      }
    };
    const source = new EventSource(`/api/${kind}/${id}/events`);
    source.addEventListener("status", (event) => {
      const state = JSON.parse(event.data);
      onStatus(state);
      if (FINAL.has(state.status) || state.status === "gone") finish();
    });
    source.addEventListener("error", () => {
      // CONNECTING: the browser retries by itself (a lost connection); say so meanwhile.
      // CLOSED: it gave up (e.g. 404 or 401) — the polling fallback reports why.
      if (source.readyState === EventSource.CLOSED) finish();
      else onStatus({ status: "reconnecting", position: null });
    });
  });
}

async function poll(kind, id, onStatus) {
  let delay = 1000;
  for (;;) {
    try {
      const job = await api("GET", `/api/${kind}/${id}?wait=20`);
      if (FINAL.has(job.status)) return job;
      onStatus({ status: job.status, position: job.position });
      delay = 1000;
    } catch (error) {
      if (!(error.offline || error.status >= 500)) throw error;
      onStatus({ status: "reconnecting", position: null });
      await new Promise((wake) => setTimeout(wake, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
}

/** A sentence for a job's live status, e.g. "Waiting in the queue: 3rd in line". */
export function describeStatus({ status, position }) {
  if (status === "queued") {
    return position && position > 1
      ? `Waiting for a free runner: ${position - 1} ${position === 2 ? "program" : "programs"} ahead of yours.`
      : "Waiting for a free runner: yours is next.";
  }
  if (status === "running") return "Running your program…";
  if (status === "reconnecting")
    return "Lost the connection to the server; reconnecting… (your program keeps its place)";
  if (status === "failed") return "The runner could not run this program.";
  if (status === "done") return "Finished.";
  return "";
}

/** A sentence for a finished run, said in the live region while its result is shown. */
export function describeFinishedRun(run) {
  if (run.status === "failed") return "The run could not be done.";
  if (run.stopped) return `${stoppedLine(run.time_ms)}: see below.`;
  if (run.verdict === "stopped") return "Run stopped.";
  return "Run finished: the output is below.";
}
