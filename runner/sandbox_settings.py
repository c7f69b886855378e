"""Every limit and knob of the sandbox containers, with defaults sized for a 2-core classroom box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024


@dataclass(frozen=True)
class SandboxSettings:
    # The image to run; None means the tag computed from this checkout's recipe (runner.image).
    image: str | None = None
    # OCI runtime: "crun" starts containers a little faster where the engine has it registered.
    runtime: Literal["runc", "crun"] = "runc"
    # A uid:gid that exists nowhere on the host: per-uid process limits and file ownership there
    # never mix with a real account.
    user: str = "65432:65432"
    # Labels every container with this instance name, so a start-up sweep removes only its own.
    instance: str = "default"

    # Pre-started containers waiting for their first job; a container is bound to the user of its
    # first job and serves only that user's jobs from then on.
    pool_size: int = 2
    # A pooled container older than this is replaced rather than used.
    pool_max_age_s: float = 300.0

    # Warm sandboxes: a user's container kept between their jobs (DESIGN §4). It is discarded
    # after this many jobs (1: never reused), ...
    warm_max_jobs: int = 100
    # ... after this long without a job, ...
    warm_idle_s: float = 300.0
    # ... when it holds more than this after a job (its processes are gone by then: what stays is
    # the harness and the page cache charged to it) ...
    warm_max_memory_mb: int = 32
    # ... and after any anomaly (a limit stopped a program, the harness failed, the protocol was
    # broken). All idle warm sandboxes together hold at most this; the least recently used goes first.
    warm_total_memory_mb: int = 1024
    # Start a user's sandbox when they log in or open a page, before their first job.
    prewarm: bool = True

    # Whole-container bounds.
    pids_limit: int = 128
    nano_cpus: int = 1_000_000_000  # one CPU per sandbox
    # The kernel splits the CPU between running sandboxes by these weights: equal, so a short run
    # gets its share beside other students' endless loops (more jobs run at once than there are cores).
    cpu_shares: int = 1024
    # CPUs every sandbox may run on (Docker's cpuset syntax: "0", "0-1", "0,2"); empty: any.
    cpuset: str = ""
    work_tmpfs_mb: int = 64
    tmp_tmpfs_mb: int = 64
    # Files per tmpfs: bounds how long emptying it between tests can take.
    tmpfs_inodes: int = 16384
    shm_mb: int = 16
    # Memory for the harness itself (Python, one test's output) on top of the program's; the job's
    # own size is added per job.
    harness_memory_mb: int = 64
    # What the harness itself may add to the cgroup's figures of one test (the host judges a
    # test's memory and CPU on those): its own allocations while it holds the program's output,
    # and the CPU of setting up, watching and reporting the test.
    harness_test_memory_mb: int = 16
    harness_test_cpu_ms: int = 250
    open_files: int = 256  # nofile, per process
    file_size_mb: int = 32  # fsize: the largest file a program may write

    # Per test. Wall time is a multiple of the CPU limit plus slack for start-up.
    output_limit_bytes: int = 1 * MiB  # per stream (stdout, stderr)
    wall_time_factor: float = 3.0
    wall_time_slack_ms: int = 1000

    # Graphical programs (pygame, turtle/tkinter, matplotlib): each test's wall time, which is also
    # its CPU limit (a drawing loop may keep the CPU busy all along); the pictures kept of what it
    # drew; and memory for the virtual display and the pictures on top of the program's own.
    graphical_wall_time_s: float = 10.0
    graphics_max_frames: int = 20  # pictures per test (frames, figures, windows); an animation aside
    graphics_max_dimension: int = 800  # longest side of a picture, in pixels
    graphics_max_image_bytes: int = 4 * MiB  # all pictures of one job together
    graphics_memory_mb: int = 96

    # Python tests are forked from a zygote the harness starts once per job, which saves each test
    # the interpreter's start-up; off, each test starts python3 afresh.
    python_fork_server: bool = True

    # A live run (typed input, streamed output, a playable window): the whole session's wall time,
    # how long it may sit with neither output nor input, and all the output it may stream.
    live_wall_time_s: float = 600.0
    live_idle_s: float = 120.0
    live_output_limit_bytes: int = 1 * MiB
    # A live graphical program's window: looks per second (a frame goes out only when it changed),
    # and the longest side of a frame (a larger window is scaled down).
    live_frames_per_s: float = 15.0
    live_frame_max_dimension: int = 640

    # Compilation, once per job.
    compile_time_limit_ms: int = 20_000
    compile_memory_mb: int = 512
    compile_output_limit_bytes: int = 64 * 1024

    # The host's own deadline for a job on top of the sum of its tests' wall times: container
    # start-up, compilation set-up, harness overhead.
    job_slack_ms: int = 15_000
    # When the attach stream ends without the harness's last word, how long the container may
    # take to be seen stopped: one still running after this lost its stream (the connection to
    # the engine dropped), which is no program's doing.
    stream_end_grace_ms: int = 2_000
    # How long to wait for the engine on each API call.
    api_timeout_s: int = 60
