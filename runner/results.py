"""Turn what the sandbox returned into a bounded, graded result.

The stored result stays under `result_max_bytes`: each output stream gets an equal share, is cut
with a visible marker when longer, and its full text (up to a higher cap) goes to the blob store.
Pictures a graphical program drew go to the blob store too (the executor kept them within the
graphics limits); the result holds their hashes.
"""

from __future__ import annotations

from runner.executor import ExecResult, TestOutcome
from runner.grading import decode, overall, test_verdict
from runner.queue import BlobSink, GradingSpec, JobResult, StoredImage, TestResult

# Room for names, verdicts and JSON punctuation around the outputs in a stored result.
ROW_OVERHEAD_BYTES = 256
MIN_STREAM_BYTES = 256


def cut_marker(hidden_bytes: int) -> str:
    return f"\n… [output cut here: {hidden_bytes} more bytes]"


def bound_text(data: bytes, cap: int) -> tuple[str, bool]:
    """`data` decoded and cut to at most `cap` UTF-8 bytes (marker included); True if cut."""
    if len(data) <= cap:
        return decode(data), False
    marker = cut_marker(len(data) - cap)
    keep = max(0, cap - len(marker.encode("utf-8")))
    # Cut on a character boundary so the kept part never ends in a replacement character.
    text = data[:keep].decode("utf-8", errors="ignore")
    return text + marker, True


def stream_cap(result_max_bytes: int, streams: int) -> int:
    return max(MIN_STREAM_BYTES, (result_max_bytes - ROW_OVERHEAD_BYTES * (streams // 2 + 1)) // max(1, streams))


def _store_full(blobs: BlobSink, data: bytes, cap: int, full_max: int) -> str | None:
    return blobs.put(data[:full_max]) if len(data) > cap else None


def shape(
    outcome: ExecResult, spec: GradingSpec, blobs: BlobSink, result_max_bytes: int, full_output_max_bytes: int
) -> JobResult:
    compile_output = None
    if outcome.compile is not None:
        compile_output, _ = bound_text(outcome.compile.output.encode("utf-8"), result_max_bytes // 2)
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
    verdict: str,
) -> TestResult:
    stdout, cut_out = bound_text(got.stdout, cap)
    stderr, cut_err = bound_text(got.stderr, cap)
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
        truncated=got.truncated or cut_out or cut_err,
        stdout_blob=_store_full(blobs, got.stdout, cap, full_max),
        stderr_blob=_store_full(blobs, got.stderr, cap, full_max),
        images=[StoredImage(i.media_type, i.label, i.width, i.height, blobs.put(i.data)) for i in got.images],
    )
