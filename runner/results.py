"""Turn what the sandbox returned into a bounded, graded result.

The stored result stays under `result_max_bytes`: each output stream gets an equal share, is cut
with a visible marker when longer, and its full text (up to a higher cap) goes to the blob store —
while the user's quota of full-output bytes lasts; past it the marker says the full text was not
kept, and nothing is written.
Pictures a graphical program drew go to the blob store too (the executor kept them within the
graphics limits); the result holds their hashes.
Compiler messages and error output name the student's files as the student does ("main.py"), not
by their place in the sandbox (runner.outcomes); the program's own output is kept as it printed it.
"""

from __future__ import annotations

from runner.executor import ExecResult, TestOutcome
from runner.grading import decode, overall, test_verdict
from runner.outcomes import student_paths
from runner.queue import BlobSink, GradingSpec, JobResult, StoredImage, TestResult

# Room for names, verdicts and JSON punctuation around the outputs in a stored result.
ROW_OVERHEAD_BYTES = 256
MIN_STREAM_BYTES = 256


NOT_KEPT = "the full output was not kept: your storage quota for full outputs is used up"


def cut_marker(hidden_bytes: int, kept: bool = True) -> str:
    if kept:
        return f"\n… [output cut here: {hidden_bytes} more bytes]"
    return f"\n… [output cut here: {hidden_bytes} more bytes; {NOT_KEPT}]"


class _Budget:
    """Bytes of full output a job may still keep; None: no limit."""

    def __init__(self, left: int | None) -> None:
        self.left = left

    def take(self, size: int) -> bool:
        if self.left is None:
            return True
        if size > self.left:
            return False
        self.left -= size
        return True


def bound_text(data: bytes, cap: int, kept: bool = True) -> tuple[str, bool]:
    """`data` decoded and cut to at most `cap` UTF-8 bytes (marker included); True if cut.
    `kept` False: the marker also says the full text was not kept."""
    if len(data) <= cap:
        return decode(data), False
    marker = cut_marker(len(data) - cap, kept)
    keep = max(0, cap - len(marker.encode("utf-8")))
    # Cut on a character boundary so the kept part never ends in a replacement character.
    text = decode(data[:keep], errors="ignore")
    return text + marker, True


def stream_cap(result_max_bytes: int, streams: int) -> int:
    return max(MIN_STREAM_BYTES, (result_max_bytes - ROW_OVERHEAD_BYTES * (streams // 2 + 1)) // max(1, streams))


def _bound_stream(
    data: bytes, cap: int, blobs: BlobSink, full_max: int, budget: _Budget
) -> tuple[str, str | None, int]:
    """The stream's stored text, the hash of its full text if kept, and the bytes kept."""
    if len(data) <= cap:
        return decode(data), None, 0
    full = data[:full_max]
    if not budget.take(len(full)):
        return bound_text(data, cap, kept=False)[0], None, 0
    return bound_text(data, cap)[0], blobs.put(full), len(full)


def shape(
    outcome: ExecResult,
    spec: GradingSpec,
    blobs: BlobSink,
    result_max_bytes: int,
    full_output_max_bytes: int,
    full_output_budget: int | None = None,
) -> JobResult:
    """`full_output_budget`: bytes of full output this job may still keep (the user's quota left); None: no limit."""
    budget = _Budget(full_output_budget)
    compile_output = None
    if outcome.compile is not None:
        compile_output, _ = bound_text(student_paths(outcome.compile.output.encode("utf-8")), result_max_bytes // 2)
        if not outcome.compile.ok:
            return JobResult("compile_error", 0.0 if _graded(spec) else None, compile_output, [])
    if len(outcome.tests) != len(spec.tests):
        raise ValueError(f"sandbox returned {len(outcome.tests)} test results for {len(spec.tests)} tests")
    cap = stream_cap(result_max_bytes - len((compile_output or "").encode("utf-8")), 2 * len(spec.tests))
    results: list[TestResult] = []
    for position, (test, got) in enumerate(zip(spec.tests, outcome.tests, strict=True), start=1):
        results.append(
            _test_result(
                position,
                test.test_case_id,
                test.name,
                got,
                cap,
                blobs,
                full_output_max_bytes,
                budget,
                test_verdict(got, test.expected_stdout, spec.comparison, spec.tolerance),
            )
        )
    verdict, score = overall([r.verdict for r in results], [t.weight for t in spec.tests])
    return JobResult(verdict, score if _graded(spec) else None, compile_output, results)


def _graded(spec: GradingSpec) -> bool:
    return any(test.expected_stdout is not None for test in spec.tests)


def _test_result(
    position: int,
    test_case_id: int | None,
    name: str,
    got: TestOutcome,
    cap: int,
    blobs: BlobSink,
    full_max: int,
    budget: _Budget,
    verdict: str,
) -> TestResult:
    stdout, stdout_blob, stdout_kept = _bound_stream(got.stdout, cap, blobs, full_max, budget)
    errors = student_paths(got.stderr)
    stderr, stderr_blob, stderr_kept = _bound_stream(errors, cap, blobs, full_max, budget)
    return TestResult(
        position=position,
        test_case_id=test_case_id,
        name=name,
        verdict=verdict,
        exit_code=got.exit_code,
        signal=got.signal,
        time_ms=got.time_ms,
        stdout=stdout,
        stderr=stderr,
        truncated=got.truncated or len(got.stdout) > cap or len(errors) > cap,
        stdout_blob=stdout_blob,
        stderr_blob=stderr_blob,
        images=[StoredImage(i.media_type, i.label, i.width, i.height, blobs.put(i.data)) for i in got.images],
        full_output_bytes=stdout_kept + stderr_kept,
    )
