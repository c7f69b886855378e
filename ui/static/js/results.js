// Showing results: a run's output, a submission's verdict and per-test table, and graphical
// output (one image, or frames played as an animation). Everything is inserted as text.
import { h, replace } from "./dom.js";

export const VERDICT_NAMES = {
  accepted: "Accepted",
  wrong_answer: "Wrong answer",
  time_limit: "Time limit exceeded",
  memory_limit: "Memory limit exceeded",
  output_limit: "Too much output",
  runtime_error: "Runtime error",
  compile_error: "Compile error",
  internal_error: "Internal error",
  stopped: "Stopped",
};

// Languages whose compile step only parses: their compile error is a syntax error.
const INTERPRETED = new Set(["python", "javascript"]);

function verdictName(verdict, language) {
  if (verdict === "compile_error" && INTERPRETED.has(language)) return "Syntax error";
  return VERDICT_NAMES[verdict] || verdict;
}

/** What a verdict means and what to try next, in words for beginners. */
export function explain(verdict, limits = {}, { run = false, language = null } = {}) {
  const seconds = limits.time_limit_ms ? ` (${limits.time_limit_ms / 1000} s)` : "";
  const memory = limits.memory_limit_mb ? ` (${limits.memory_limit_mb} MB)` : "";
  switch (verdict) {
    case "accepted":
      return run ? "Your program finished without errors." : "Every test passed. Well done!";
    case "wrong_answer":
      return "Your program ran, but what it printed is not what was expected. Compare your output with the expected output.";
    case "time_limit":
      return `Your program ran longer than allowed${seconds}. Look for a loop that never ends, or for input() waiting for input that was not given.`;
    case "memory_limit":
      return `Your program used more memory than allowed${memory}. Look for a list or string that keeps growing.`;
    case "output_limit":
      return "Your program printed more than allowed. Is a print() inside a loop that never ends?";
    case "runtime_error":
      return "Your program stopped with an error. The error message below says where and why.";
    case "compile_error":
      return INTERPRETED.has(language)
        ? "Your code has a syntax error, so it could not start. The message below points at the line to fix."
        : "Your code could not be compiled. The compiler's message below points at the line to fix.";
    case "internal_error":
      return "Something went wrong inside the runner — not your fault. Please try again.";
    case "stopped":
      return "You stopped the program before it finished.";
    default:
      return "";
  }
}

export function badge(verdict, status, language = null) {
  if (status && status !== "done") {
    const label = status === "failed" ? "Not run" : status === "running" ? "Running" : "Waiting";
    return h("span", { class: `badge badge-${status}` }, label);
  }
  if (!verdict) return h("span", { class: "badge" }, "—");
  return h("span", { class: `badge badge-${verdict}` }, verdictName(verdict, language));
}

export function score(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 100) / 100} / 100`;
}

/** What the runner did about a graphical program that was still running at its wall time. */
export function stoppedLine(timeMs) {
  return `Stopped ${stoppedAfter(timeMs)}`;
}

function stoppedAfter(timeMs) {
  const seconds = timeMs ? `after ${Math.round(timeMs / 100) / 10} s ` : "";
  return `${seconds}— here is what it drew`;
}

/** The program's error output as it printed it, and below it a hint when its message is not plain
 * to a beginner (e.g. input() finding no more lines). */
function errorsBlock(stderr, hint) {
  if (!stderr) return null;
  const errors = block("Errors", stderr);
  if (hint) errors.append(h("p", { class: "hint error-hint" }, hint));
  return errors;
}

function block(label, text, { empty = "(nothing)" } = {}) {
  return h(
    "div",
    { class: "io" },
    h("h4", {}, label),
    h("pre", { class: text ? "" : "empty", tabindex: "0" }, text || empty),
  );
}

/**
 * Pictures from a graphical program: its animation (an animated PNG that plays by itself) and
 * its still pictures — one shown as it is, several as a flip-book with play/pause and a slider.
 */
export function pictures(stills, animation = null) {
  const parts = [];
  if (animation) {
    parts.push(
      h(
        "figure",
        { class: "graphics" },
        h("img", { src: animation, alt: "Animation drawn by the program" }),
        h("figcaption", { class: "hint" }, "Animation"),
      ),
    );
  }
  if (stills && stills.length === 1) {
    parts.push(h("figure", { class: "graphics" }, h("img", { src: stills[0], alt: "Picture drawn by the program" })));
  } else if (stills && stills.length > 1) {
    parts.push(flipBook(stills));
  }
  return parts.length ? parts : null;
}

function flipBook(urls) {
  const img = h("img", { src: urls[0], alt: `Picture 1 of ${urls.length} drawn by the program` });
  const slider = h("input", { type: "range", min: 0, max: urls.length - 1, value: 0, "aria-label": "Picture" });
  const counter = h("span", { "aria-hidden": "true" }, `1 / ${urls.length}`);
  let timer = null;
  const show = (index) => {
    img.src = urls[index];
    img.alt = `Picture ${index + 1} of ${urls.length} drawn by the program`;
    slider.value = index;
    counter.textContent = `${index + 1} / ${urls.length}`;
  };
  const play = h("button", { type: "button" }, "Play");
  play.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      play.textContent = "Play";
      return;
    }
    play.textContent = "Pause";
    timer = setInterval(() => show((Number(slider.value) + 1) % urls.length), 200);
  });
  slider.addEventListener("input", () => show(Number(slider.value)));
  return h("figure", { class: "graphics" }, img, h("figcaption", { class: "player" }, play, slider, counter));
}

function messagesLabel(verdict, language) {
  return verdict === "compile_error" && INTERPRETED.has(language) ? "Syntax error" : "Compiler messages";
}

/** A plain run's result. */
export function renderRun(container, run, limits = {}) {
  const parts = [];
  if (run.status === "failed") {
    parts.push(
      h("p", { class: "notice error" }, run.error ? run.error.message : "The runner could not run this program."),
    );
    return replace(container, parts);
  }
  const finished = run.verdict === "accepted";
  const timing = run.time_ms === null || run.time_ms === undefined ? "" : ` in ${run.time_ms} ms`;
  if (run.stopped) {
    // Not "Finished": the runner ended it, and what it drew is the result.
    parts.push(
      h(
        "p",
        { class: "verdict-line" },
        h("span", { class: "badge badge-stopped" }, "Stopped"),
        " ",
        stoppedAfter(run.time_ms),
      ),
    );
  } else {
    parts.push(
      h(
        "p",
        { class: "verdict-line" },
        finished ? h("span", { class: "badge badge-accepted" }, "Finished") : badge(run.verdict, "done", run.language),
        timing,
        run.exit_code ? ` · exit code ${run.exit_code}` : "",
      ),
    );
  }
  const explanation = explain(run.verdict, limits, { run: true, language: run.language });
  if (explanation && run.verdict !== "accepted") parts.push(h("p", { class: "explain" }, explanation));
  if (run.compile_output) parts.push(block(messagesLabel(run.verdict, run.language), run.compile_output));
  parts.push(block("Output", run.stdout, { empty: "(your program printed nothing)" }));
  parts.push(errorsBlock(run.stderr, run.hint));
  if (run.truncated) {
    parts.push(
      h(
        "p",
        { class: "hint" },
        "The output was long and is cut above. ",
        run.full_output
          ? h("a", { href: `/api/runs/${run.id}/output/stdout`, target: "_blank" }, "Open all of it")
          : null,
      ),
    );
  }
  parts.push(pictures(run.images, run.animation));
  return replace(container, parts);
}

/**
 * How many hidden tests passed, when the result has no row for them: a student's view of a
 * problem whose teacher shows hidden tests only as a count. Null when the rows are there.
 */
function hiddenSummary(sub) {
  const hidden = sub.hidden_tests;
  if (sub.status !== "done" || !hidden || !hidden.total) return null;
  if ((sub.tests || []).some((test) => !test.visible || (test.visibility && test.visibility !== "visible")))
    return null;
  return hidden;
}

/** A submission's result: verdict, score and a row per test. `staff` shows hidden tests in full. */
export function renderSubmission(container, sub, limits = {}) {
  const parts = [];
  if (sub.status === "failed") {
    parts.push(h("p", { class: "notice error" }, sub.error ? sub.error.message : "The runner could not judge this."));
    return replace(container, parts);
  }
  const hidden = hiddenSummary(sub);
  // Only hidden tests failed: their verdicts are not shown, so neither is a reason.
  const hiddenOnly =
    hidden && hidden.passed < hidden.total && (sub.tests || []).every((test) => test.verdict === "accepted");
  parts.push(
    h(
      "p",
      { class: "verdict-line" },
      hiddenOnly
        ? h("span", { class: "badge badge-wrong_answer" }, "Hidden tests failed")
        : badge(sub.verdict, sub.status, sub.language),
      " ",
      h("span", { class: "score" }, `Score ${score(sub.score)}`),
    ),
  );
  const explanation = hiddenOnly
    ? "Your program passed every test you can see, but not every hidden test. Think of inputs the examples do not try: the smallest and largest, empty input, repeated values."
    : explain(sub.verdict, limits, { language: sub.language });
  if (explanation) parts.push(h("p", { class: "explain" }, explanation));
  if (sub.compile_output) parts.push(block(messagesLabel(sub.verdict, sub.language), sub.compile_output));
  if (sub.tests && sub.tests.length) parts.push(testTable(sub));
  if (hidden) {
    parts.push(
      h(
        "p",
        { class: "hidden-summary" },
        `Passed ${hidden.passed} of ${hidden.total} hidden ${hidden.total === 1 ? "test" : "tests"}.`,
      ),
    );
  }
  return replace(container, parts);
}

// A result from before results kept their test data, whose test was changed since (staff only).
const NOT_KEPT = "(not kept: the test was changed after this was judged)";

function testTable(sub) {
  const rows = sub.tests.map((test) => {
    const hiddenFromStudents = test.visibility && test.visibility !== "visible";
    const hasDetails = "stdout" in test;
    const lost = test.test_data_kept === false;
    const name = [test.name, hiddenFromStudents ? " (hidden from students)" : ""].join("");
    return [
      h(
        "tr",
        {},
        h("td", {}, String(test.position)),
        h("th", { scope: "row" }, name),
        h("td", {}, badge(test.verdict, "done")),
        h("td", {}, hasDetails && test.time_ms !== null ? `${test.time_ms} ms` : ""),
      ),
      h(
        "tr",
        { class: "details-row" },
        h(
          "td",
          { colspan: "4" },
          hasDetails
            ? h(
                "details",
                { open: test.verdict !== "accepted" ? true : null },
                h("summary", {}, `Details of ${test.name}`),
                h(
                  "div",
                  { class: "io-grid" },
                  block("Input", test.stdin, { empty: lost ? NOT_KEPT : "(no input)" }),
                  block("Expected output", test.expected_stdout, { empty: lost ? NOT_KEPT : "(nothing)" }),
                  block("Program output", test.stdout, { empty: "(printed nothing)" }),
                  errorsBlock(test.stderr, test.hint),
                ),
                test.stopped ? h("p", { class: "hint stopped" }, stoppedLine(test.time_ms)) : null,
                pictures(test.images, test.animation),
              )
            : h("p", { class: "hint" }, "Hidden test: only its verdict is shown."),
        ),
      ),
    ];
  });
  // Staff see each test as it was judged, which may differ from the problem's tests now.
  const asJudged = sub.tests.some((test) => "test_data_kept" in test);
  return h(
    "table",
    { class: "tests" },
    h(
      "caption",
      {},
      "Tests",
      asJudged ? h("span", { class: "hint" }, " — input and expected output as they were when this was judged") : null,
    ),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "#"),
        h("th", { scope: "col" }, "Test"),
        h("th", { scope: "col" }, "Verdict"),
        h("th", { scope: "col" }, "Time"),
      ),
    ),
    h("tbody", {}, rows),
  );
}
