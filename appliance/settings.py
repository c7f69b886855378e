"""Settings: declared once as data, resolved as defaults < config file < environment < CLI flags.

Every limit the appliance enforces is a named setting here, declared once as a `Settings` field
(`setting()`: type, default, help, own checks); SETTINGS, read off those fields, drives config.toml,
the LABRUNNER_* environment variables, CLI overrides, validation and the README's configuration
section (a test keeps them in step).
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import platformdirs

from appliance.file_kinds import KINDS, parse_allowed

ENVIRONMENTS = ("development", "staging", "production")
CONFIG_FILE = "config.toml"
# Names a config file outside the data folder (the Debian package's /etc/labrunner/config.toml):
# read instead of the data folder's, and the one place besides --data-dir and LABRUNNER_DATA_DIR
# that may choose the data folder, since it is found without it.
CONFIG_ENV = "LABRUNNER_CONFIG"
SECRET_FILE = "secret.key"
MIN_SECRET_LENGTH = 32
MAX_ROOM_NAME_BYTES = 63  # one DNS label
# A registry host (with an optional port) and an optional path; the tag is always the content tag.
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


class SettingsError(Exception):
    """A setting is missing, malformed or unsafe for the chosen environment."""


_T = TypeVar("_T")


def setting(default: _T, help: str, *, choices: tuple[_T, ...] = (), minimum: int | None = None) -> _T:
    """Declare one setting as a `Settings` field: its default (whose type also parses config, environment
    and flag values), the help the README's table repeats, and the checks of its value alone.
    `LABRUNNER_<NAME>` sets it from the environment."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum})


@dataclass(frozen=True)
class Settings:
    # Resolved before the settings (they choose where config.toml is), so not settings themselves.
    environment: str
    data_dir: Path
    # Every further field is a setting, declared with `setting()`; SETTINGS below is read off them.
    host: str = setting("0.0.0.0", "Address to listen on (0.0.0.0: every LAN interface).")
    port: int = setting(8080, "TCP port to listen on (staging's default is 8081, so it runs beside production).")
    room_name: str = setting(
        "",
        "Name the appliance announces itself under on the LAN (zeroconf), e.g. the room; empty: the machine's"
        " host name.",
    )
    lan_announce: bool = setting(
        True, "Announce the appliance on the LAN by zeroconf (_http._tcp) on every address it listens on."
    )
    debug: bool = setting(False, "Verbose errors in responses; refused in production.")
    secret_key: str = setting("", "Signing secret; generated into the data dir at first start when empty.")
    max_body_bytes: int = setting(1_048_576, "Largest request body accepted (bytes).")
    max_string_chars: int = setting(20_000, "Longest short text field (names, titles) accepted.")
    max_statement_chars: int = setting(200_000, "Longest problem statement accepted (characters).")
    max_code_chars: int = setting(200_000, "Longest source code accepted (characters).")
    max_test_case_bytes: int = setting(262_144, "Largest stdin or expected output of one test case.")
    max_test_cases: int = setting(100, "Most test cases in one problem.")
    max_comment_chars: int = setting(4000, "Longest teacher's comment on a submission (characters).", minimum=1)
    max_comments_per_submission: int = setting(50, "Most teacher's comments on one submission.", minimum=1)
    session_days: int = setting(14, "How long a login session lasts (days).")
    min_self_register_age: int = setting(13, "Younger users cannot register themselves; a teacher creates them.")
    adult_age: int = setting(18, "Users younger than this are flagged as minors.")
    login_max_failures_per_account_address: int = setting(
        5,
        "Failed logins on one account from one address within the window before that address gets 429 for it.",
        minimum=1,
    )
    login_max_failures_per_address: int = setting(
        20, "Failed logins per address within the window before 429.", minimum=1
    )
    login_max_failures_per_account: int = setting(
        10,
        "Failed logins on one account from all addresses within the window before each further attempt on it"
        " waits a growing delay (keep it above the per account and address limit).",
        minimum=1,
    )
    login_backoff_base_s: float = setting(
        1.0, "First delay once an account is past its failures; doubles per failure (seconds)."
    )
    login_backoff_max_s: float = setting(30.0, "Longest delay between login attempts on one account (seconds).")
    login_failure_window_s: int = setting(300, "Window for counting failed logins (seconds).", minimum=1)
    login_settle_wait_s: float = setting(
        10.0,
        "Longest a login waits for others from its address still being checked before 429 (a class logging in"
        " at once), seconds.",
    )
    register_max_per_address: int = setting(
        60,
        "Self-registrations from one address within the window before 429 (a whole class registers from one"
        " school address at its first lesson).",
        minimum=1,
    )
    register_window_s: int = setting(3600, "Window for counting self-registrations (seconds).", minimum=1)
    join_max_failures_per_user: int = setting(
        10,
        "Wrong join codes one account may try within the window before 429 (per account, not per address:"
        " a whole class joins at once from one address).",
        minimum=1,
    )
    join_failure_window_s: int = setting(600, "Window for counting wrong join codes (seconds).", minimum=1)
    token_days: int = setting(90, "How long an API token lasts when its creator does not say (days).", minimum=1)
    token_max_days: int = setting(365, "Longest lifetime an API token may be given (days).")
    password_min_length: int = setting(8, "Shortest password accepted.")
    default_time_limit_ms: int = setting(2000, "Per-test time limit of a problem when none is given.")
    max_time_limit_ms: int = setting(20_000, "Largest per-test time limit a problem may set.")
    default_memory_limit_mb: int = setting(256, "Per-test memory limit of a problem when none is given.")
    max_memory_limit_mb: int = setting(1024, "Largest per-test memory limit a problem may set.")
    max_import_bytes: int = setting(10_485_760, "Largest problem archive accepted by import (bytes).")
    workers: int = setting(
        6,
        "Sandbox jobs run at once: more than the cores, so a short run never waits behind long ones"
        " (the kernel shares the CPU between sandboxes evenly).",
    )
    queue_max: int = setting(500, "Jobs waiting at most; further jobs get 503.")
    max_jobs_in_flight_per_user: int = setting(
        3, "Queued or running jobs one student may have (staff exempt; 0: no limit)."
    )
    dedup_window_s: int = setting(30, "A same-code resubmission within this window returns the earlier job.")
    submissions_per_problem_per_hour: int = setting(
        30, "Submissions one student may make to one problem in an hour; more get 429 (staff exempt; 0: no limit)."
    )
    submissions_per_problem_per_minute: int = setting(
        5, "Submissions one student may make to one problem in a minute, a burst limit (staff exempt; 0: no limit)."
    )
    max_running_jobs_per_user: int = setting(
        0, "Workers one student may hold at once (rejudges share one such limit); 0: a third of them, at least 1."
    )
    runs_per_user_per_minute: int = setting(
        30,
        "Runs (live runs too) one student may start in any minute, whatever address they use; more get 429"
        " rate_limited (staff exempt; 0: no limit).",
    )
    submissions_per_user_per_minute: int = setting(
        10,
        "Submissions one student may make in any minute, to all problems together; more get 429 rate_limited"
        " (staff exempt; 0: no limit).",
    )
    job_lease_s: int = setting(120, "How long a worker holds a claimed job before it is requeued.")
    infra_max_attempts: int = setting(4, "Infrastructure failures retried at most this many times per job.")
    infra_backoff_s: float = setting(2.0, "First retry delay after an infrastructure failure; doubles each time.")
    max_wait_s: int = setting(30, "Longest ?wait= a client may ask for (seconds).")
    result_max_bytes: int = setting(65_536, "Largest stored result row; longer output is cut and kept in blobs.")
    full_output_max_bytes: int = setting(8_388_608, "Largest full output kept in the blob store per stream.")
    full_output_max_bytes_per_user: int = setting(
        52_428_800, "Most bytes of full outputs kept per user; past it a cut output says its full text was not kept."
    )
    full_output_expiry_days: int = setting(14, "Full outputs are deleted this many days after their job finished.")
    sandbox_runtime: str = setting(
        "runc", "OCI runtime for sandboxes: runc or crun (registered by ensure-docker).", choices=("runc", "crun")
    )
    sandbox_pool_size: int = setting(
        2, "Sandbox containers started ahead of time; each is bound to the student of its first job."
    )
    sandbox_warm_max_jobs: int = setting(
        100, "Jobs one student's warm sandbox serves before it is replaced (1: a fresh container for every job)."
    )
    sandbox_warm_idle_s: float = setting(300.0, "A warm sandbox unused for this long is removed (seconds).")
    sandbox_warm_max_memory_mb: int = setting(32, "A warm sandbox holding more than this after a job is removed.")
    sandbox_prewarm: bool = setting(
        True, "Start a student's sandbox when they log in or open a page, so their first run need not wait for it."
    )
    sandbox_warm_total_memory_mb: int = setting(
        1024, "Memory all idle warm sandboxes may hold together; the least recently used goes first."
    )
    sandbox_pids_limit: int = setting(128, "Processes and threads one sandbox may hold.")
    sandbox_cpuset: str = setting(
        "", "CPUs every sandbox may run on, as Docker's --cpuset-cpus takes them, e.g. 0, 0-1 or 0,2 (empty: any CPU)."
    )
    sandbox_output_limit_bytes: int = setting(1_048_576, "Output a program may write per stream and test.")
    sandbox_work_tmpfs_mb: int = setting(64, "Size of a sandbox's work directory (tmpfs).")
    sandbox_tmp_tmpfs_mb: int = setting(64, "Size of a sandbox's /tmp (tmpfs).")
    sandbox_wall_time_factor: float = setting(3.0, "Wall-time limit as a multiple of the CPU-time limit.")
    sandbox_compile_time_limit_ms: int = setting(20_000, "Time a compilation may take.")
    image_registry: str = setting(
        "",
        "Registry `labrunner sandbox pull` fetches the sandbox image from, by its content tag, e.g."
        " registry.example:5000/school (empty: build it here with `labrunner sandbox build`).",
    )
    image_transfer_timeout_s: int = setting(
        1800,
        "Longest `labrunner sandbox export|load|pull` waits for one answer of the Docker engine (a large"
        " image loads for minutes), seconds.",
        minimum=1,
    )
    graphical_wall_time_s: float = setting(
        10.0, "Wall and CPU time of each test of a graphical program (pygame, turtle, tkinter, matplotlib), seconds."
    )
    graphics_max_frames: int = setting(20, "Most pictures kept per test of a graphical program (an animation aside).")
    graphics_max_dimension: int = setting(800, "Longest side of a picture of a graphical program (pixels).")
    graphics_max_image_bytes: int = setting(4_194_304, "Most bytes of pictures kept per run or submission.")
    live_wall_time_s: float = setting(
        600.0, "Longest a live run (typed input, playable window) may last, seconds.", minimum=1
    )
    live_idle_s: float = setting(
        120.0,
        "A live run with neither output nor input for this long is stopped (a forgotten tab), seconds.",
        minimum=1,
    )
    live_output_limit_bytes: int = setting(1_048_576, "Output a live run may stream in all.", minimum=1)
    live_frames_per_s: float = setting(15.0, "Looks per second at a live graphical program's window.", minimum=1)
    live_frame_max_dimension: int = setting(
        640, "Longest side of a live window frame (pixels; a larger window is scaled down).", minimum=16
    )
    live_sessions_max: int = setting(
        40,
        "Live runs the machine holds at once (each keeps a sandbox, not a worker; 0: none).",
    )
    live_messages_per_s: int = setting(
        60, "Messages a live run's page may send a second (keys, clicks, lines); more are dropped.", minimum=1
    )
    live_connect_s: float = setting(30.0, "Time a new live run waits for its page to connect, seconds.", minimum=1)
    live_page_stall_s: float = setting(
        10.0,
        "A live run's page that takes none of its output for this long is gone (the run stops), seconds.",
        minimum=1,
    )
    file_types_allowed: str = setting(
        "text,csv,json,python,source,png,jpeg,gif,bmp,wav,ogg,mp3",
        "File types accepted, judged by content (comma-separated; also: none).",
    )
    file_max_bytes: int = setting(4_194_304, "Largest uploaded file, and largest archive upload (bytes).")
    file_name_max_chars: int = setting(100, "Longest file name accepted (characters).")
    files_max_per_user: int = setting(50, "Most files one account may keep.")
    files_max_bytes_per_user: int = setting(52_428_800, "Most bytes of files one account may keep.")
    file_expiry_days: int = setting(
        7, "Uploads are deleted this many days after upload (kept while a submission uses them)."
    )
    retention_purge_time: str = setting(
        "03:00",
        "Local time (HH:MM) of the daily retention purge; a machine that was off then purges soon after it starts.",
    )
    retention_minor_days: int = setting(
        30,
        "Minors' runs, and the code, input, outputs, pictures and files of their submissions, their uploads and"
        " drafts are purged this many days after they were made (0: never).",
    )
    retention_minor_grades_days: int = setting(
        365,
        "Minors' submissions themselves (the gradebook's verdicts and scores) are deleted this many days after"
        " they were made (0: never).",
    )
    retention_adult_output_days: int = setting(
        180, "Adults' run and submission outputs and pictures are purged this many days after the job (0: never)."
    )
    retention_token_days: int = setting(
        30, "Expired and revoked API tokens are deleted this many days after they stopped working (0: never)."
    )
    retention_batch_rows: int = setting(
        100, "Rows a retention purge takes per write transaction, so it never holds the writer long.", minimum=1
    )
    archive_unpack: bool = setting(
        True, "Unpack ZIP uploads sent with unpack=true into files (false: refuse archives)."
    )
    archive_max_members: int = setting(50, "Most files one unpacked archive may hold.")
    archive_max_bytes: int = setting(20_971_520, "Most bytes one archive may unpack to.")
    archive_max_ratio: int = setting(100, "Largest unpacked/packed size ratio of an archive member (zip bombs).")
    job_files_max: int = setting(20, "Most files in one run's or submission's working directory.")
    job_files_max_bytes: int = setting(
        16_777_216, "Most bytes of files in one run's or submission's working directory."
    )
    asset_max_bytes: int = setting(4_194_304, "Largest problem asset (bytes).")
    assets_max_per_problem: int = setting(50, "Most assets one problem may have.")
    asset_base_url: str = setting("", "Base URL of asset links (a CDN or the central instance); empty: this appliance.")
    max_roster_import_rows: int = setting(300, "Most students one roster CSV import may list.")
    exam_max_minutes: int = setting(480, "Longest exam a teacher may set (minutes).", minimum=1)
    exam_max_problems: int = setting(30, "Most problems one exam may hold.", minimum=1)
    exam_presence_s: int = setting(
        60, "A student counts as online in an exam's live view while seen within this many seconds.", minimum=5
    )
    exam_live_refresh_s: int = setting(
        5, "How often an exam's live view is recomputed at most while nothing is submitted (seconds).", minimum=1
    )
    live_access_check_s: int = setting(
        10,
        "How often an open live run checks that its student may still run code (still logged in, no exam"
        " without runs begun) and stops otherwise (seconds).",
        minimum=1,
    )
    backup_folder: str = setting(
        "", "Folder the backups are written to (a USB disk or a network share); empty: the data dir's backups/."
    )
    backup_time: str = setting("03:00", "Local time of the daily backup, HH:MM (empty: no scheduled backups).")
    backup_misfire_grace_h: int = setting(
        20, "A daily backup missed while the machine was off runs at start-up if its slot is this recent (hours)."
    )
    backup_keep_daily: int = setting(7, "Backups kept: the newest of each of this many recent days.")
    backup_keep_weekly: int = setting(4, "Backups kept: the newest of each of this many recent weeks.")
    backup_keep_monthly: int = setting(12, "Backups kept: the newest of each of this many recent months.")
    backup_passphrase_file: str = setting(
        "",
        "File holding the passphrase that encrypts backups (age format); keep it off the backup disk."
        " Empty: LABRUNNER_BACKUP_PASSPHRASE, or unencrypted backups.",
    )
    backup_free_reserve_mb: int = setting(100, "Free space a backup must leave on the disks it writes to (MiB).")
    job_history_days: int = setting(90, "Runs of backups, restores and purges are listed this long (days).")
    desktop_login_link_s: int = setting(
        60, "How long a one-time login link made by `labrunner desktop` stays valid (seconds).", minimum=1
    )
    desktop_setup_link_s: int = setting(
        900, "How long the first-start setup link (create the admin and the teacher) stays valid (seconds).", minimum=1
    )
    desktop_attach_wait_s: int = setting(
        30,
        "How long `labrunner desktop` waits for a starting server of its data folder to say where it listens.",
        minimum=1,
    )
    desktop_stop_wait_s: int = setting(
        120,
        "How long closing the window waits for the server to stop (running jobs finish or are requeued).",
        minimum=1,
    )
    dashboard_interval_s: float = setting(
        1.5,
        "The admin dashboard's live stream sends a fresh picture this often, and at once on queue changes (s).",
        minimum=1,
    )
    dashboard_streams_max: int = setting(
        20,
        "Live staff streams open at once (dashboards and exam live views, every admin's and teacher's tab);"
        " more get 503.",
        minimum=1,
    )
    dashboard_streams_per_user: int = setting(
        3,
        "Live staff streams (dashboards, exam live views) one account may hold open at once, so no one teacher"
        " fills every slot.",
        minimum=1,
    )
    dashboard_jobs_max: int = setting(200, "Queued and running jobs the dashboard lists (all are counted).", minimum=1)
    dashboard_error_lines: int = setting(50, "Recent warning and error log lines the dashboard shows.", minimum=1)
    dashboard_storage_refresh_s: float = setting(
        30.0, "How often the dashboard and /metrics measure the database, blob store and free disk (s)."
    )
    runner_verbose_s: float = setting(
        900.0, "Verbose runner logging, switched on from the dashboard, switches itself back after this (s).", minimum=1
    )
    maintenance_message_max_chars: int = setting(
        500, "Longest maintenance message for students (characters).", minimum=1
    )
    maintenance_poll_s: float = setting(
        15.0, "Students' pages ask this often whether maintenance mode began or ended (s).", minimum=1
    )
    sync_real_names: bool = setting(
        False,
        "Sync bundles carry usernames; off: each user travels under a stable pseudonym of this appliance"
        " (birth dates never travel).",
    )
    sync_submission_code: bool = setting(False, "Sync bundles carry submissions' code, not only verdicts and scores.")
    sync_bundle_max_bytes: int = setting(
        268_435_456,
        "Largest sync bundle `labrunner import` and `POST /api/sync/bundles` take, packed or unpacked (bytes).",
        minimum=1,
    )
    sync_central_url: str = setting(
        "",
        "Central instance this classroom pushes its sync bundles to, http(s)://host[:port] (empty: no push).",
    )
    sync_central_key: str = setting(
        "",
        "The central instance's public key (ed25519:..., as its `labrunner identity` prints it): when set, a push"
        " counts as acknowledged only when the central instance signed the acknowledgement with it, so no one"
        " between the two can answer for it over plain HTTP (empty: any well-formed acknowledgement is taken).",
    )
    sync_every_s: float = setting(
        300.0, "How often the outbox pushes what changed to the central instance (s).", minimum=1
    )
    sync_backoff_max_s: float = setting(
        1800.0,
        "Longest wait between retries of a failed push; retries start at 1 s and double, with jitter (s).",
        minimum=1,
    )
    sync_connect_timeout_s: float = setting(
        10.0, "A push gives up connecting to the central instance after (s).", minimum=1
    )
    sync_timeout_s: float = setting(
        300.0, "A push gives up waiting for the central instance's acknowledgement after (s).", minimum=1
    )
    sync_answer_max_bytes: int = setting(
        1_048_576,
        "Largest answer the classroom reads from the central instance to a push (its acknowledgement or refusal)"
        " (bytes).",
        minimum=1024,
    )
    problem_set_max_problems: int = setting(
        200, "Most problems one problem set may hold, published or received.", minimum=1
    )
    sync_request_max_age_s: float = setting(
        300.0,
        "A classroom's signed request for the central instance's problem sets is refused when its time is"
        " further than this from the central instance's clock (s).",
        minimum=1,
    )
    sync_central_fingerprint: str = setting(
        "",
        "SHA-256 fingerprint of the central instance's certificate (as its `labrunner tls` prints it): when set,"
        " an https push accepts that certificate only, self-signed too, and no other (empty: the system's"
        " certificate authorities decide).",
    )
    sync_ca_file: str = setting(
        "",
        "PEM file of the certificate authorities an https push trusts instead of the system's (a school's own"
        " CA); empty: the system's.",
    )
    sync_push_max_per_address: int = setting(
        60,
        "Pushes the central instance takes from one address within the window before 429 (a refused push counts too).",
        minimum=1,
    )
    sync_push_window_s: int = setting(60, "Window for counting pushes per address (seconds).", minimum=1)
    sync_push_read_timeout_s: float = setting(
        600.0,
        "Longest the central instance reads one pushed body (a dropped link must not hold up its appliance's"
        " pushes for ever), seconds.",
        minimum=1,
    )
    sync_push_busy_retry_s: int = setting(
        5,
        "The Retry-After a push gets while another push of its appliance is being received (one at a time) (seconds).",
        minimum=1,
    )
    tls: str = setting(
        "off",
        "Serve over HTTPS: off, self-signed (a certificate made once in the data folder at first start) or"
        " files (tls_cert_file and tls_key_file, from school IT). The fingerprint shows at start, in"
        " `labrunner tls` and on the admin and Classroom pages.",
        choices=("off", "self-signed", "files"),
    )
    tls_cert_file: str = setting(
        "", "PEM certificate (its chain may follow) served when tls = files; checked at start."
    )
    tls_key_file: str = setting("", "PEM private key of tls_cert_file (unencrypted) when tls = files.")
    problem_set_max_offers: int = setting(
        1000,
        "Most problem sets a classroom takes from the central instance's list in one fetch; a longer list is"
        " refused, and nothing of it fetched.",
        minimum=1,
    )
    runner_mode: str = setting(
        "local",
        "Where jobs run: local (this machine's Docker engine, the in-process queue) or remote (runner hosts"
        " started with `labrunner worker`, through the broker at runner_broker_url).",
        choices=("local", "remote"),
    )
    database_url: str = setting(
        "",
        "Where the data lives: empty for the SQLite file in the data folder (the appliance's default), or"
        " postgresql://USER:PASSWORD@HOST:PORT/DATABASE for a central instance on PostgreSQL (C collation).",
    )
    runner_broker_url: str = setting(
        "",
        "The broker runner hosts take jobs from when runner_mode = remote: redis://USER:PASSWORD@HOST:PORT/DB"
        " (rediss:// for TLS).",
    )
    runner_dispatch_max: int = setting(
        256,
        "Jobs the server has out on runner hosts at once, at most (remote mode); each also needs a free"
        " slot on a host.",
        minimum=1,
    )
    runner_host_lost_after_s: float = setting(
        10.0, "A runner host not heard from for this long is lost: its jobs move to other hosts (s).", minimum=1
    )
    runner_max_deliveries: int = setting(
        2,
        "Runner hosts one job is placed on at most before it counts as one infrastructure failure (its"
        " host lost or its engine failed).",
        minimum=1,
    )
    runner_no_host_wait_s: float = setting(
        30.0, "How long a claimed job waits for a usable runner host before it is retried later (s).", minimum=1
    )
    runner_transcript_max_bytes: int = setting(
        268_435_456,
        "Largest answer the server reads from a runner host for one job (bytes); a larger one is refused"
        " unread and the job moves to another host.",
        minimum=1,
    )
    worker_slots: int = setting(
        2, "Jobs a runner host (`labrunner worker`) runs at once; about its number of cores.", minimum=1
    )
    worker_region: str = setting(
        "default", "The region a runner host declares; classes and users may prefer one (`labrunner regions`)."
    )
    worker_heartbeat_s: float = setting(
        1.0, "How often a runner host tells the server its load and health (s).", minimum=0
    )
    worker_job_timeout_s: float = setting(
        600.0, "Longest a runner host spends on one job whatever its limits say (s).", minimum=1
    )

    @property
    def running_jobs_per_user(self) -> int:
        """`max_running_jobs_per_user`, with 0 resolved to a fair share: a third of the workers, so
        two students' endless loops still leave room for the class."""
        return self.max_running_jobs_per_user or max(1, self.workers // 3)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "labrunner.sqlite3"

    @property
    def database_location(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL when `database_url` names one."""
        return self.database_url or self.db_path

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def backup_dir(self) -> Path:
        return Path(self.backup_folder).expanduser() if self.backup_folder else self.data_dir / "backups"


@dataclass(frozen=True)
class Setting:
    """One setting as the loader, the CLI and the README's table see it, read off its `Settings` field."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    minimum: int | None = None

    @property
    def env(self) -> str:
        return "LABRUNNER_" + self.name.upper()


_RESOLVED = ("environment", "data_dir")
_undeclared = [f.name for f in fields(Settings) if f.name not in _RESOLVED and "help" not in f.metadata]
if _undeclared:
    raise TypeError(f"Settings fields not declared with setting(): {', '.join(_undeclared)}")
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["help"], f.metadata["choices"], f.metadata["minimum"])
    for f in fields(Settings)
    if f.name not in _RESOLVED
)
_BY_NAME = {s.name: s for s in SETTINGS}


# Staging runs beside production on one machine: its own data folder (below) and its own port.
STAGING_PORT = 8081


def default_data_dir(environment: str) -> Path:
    base = Path(platformdirs.user_data_dir("labrunner", appauthor=False))
    return base if environment == "production" else base / environment


def _coerce(name: str, value: Any, source: str) -> Any:
    default = _BY_NAME[name].default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise SettingsError(f"setting {name!r} from {source}: {value!r} is not a valid {kind}") from None


def load_settings(
    *,
    environment: str | None = None,
    data_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve settings in precedence order and make sure the data dir and secret exist."""
    env = os.environ if environ is None else environ
    environment = environment or env.get("LABRUNNER_ENV") or "development"
    if environment not in ENVIRONMENTS:
        raise SettingsError(f"unknown environment {environment!r}; use one of {', '.join(ENVIRONMENTS)}")
    named = env.get(CONFIG_ENV)
    config_path = Path(named).expanduser() if named else None
    file_values = _read_config(config_path, named_by=CONFIG_ENV) if config_path else {}
    located: Path | None = None
    if config_path is not None and "data_dir" in file_values:
        written = file_values.pop("data_dir")
        if not isinstance(written, str) or not written:
            raise SettingsError(f"{config_path}: data_dir must be a folder's path in quotes (got {written!r})")
        located = config_path.parent / Path(written).expanduser()  # a relative path: beside the file
    chosen_dir = data_dir or env.get("LABRUNNER_DATA_DIR") or located or default_data_dir(environment)
    root = Path(chosen_dir).expanduser().resolve()
    # Owner-only when made here: the database holds accounts, hidden tests and students' work.
    root.mkdir(parents=True, exist_ok=True, mode=0o700)

    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    if environment == "staging":
        values["port"] = STAGING_PORT  # a default only: a config file, variable or flag still sets it
    if config_path is None and (root / CONFIG_FILE).exists():
        config_path = root / CONFIG_FILE
        file_values = _read_config(config_path, named_by=None)
    for key, value in file_values.items():
        if key == "data_dir":  # only left here by the data folder's own config.toml
            raise SettingsError(f"{config_path}: data_dir can be set only in a file named by ${CONFIG_ENV}")
        if key not in _BY_NAME:
            raise SettingsError(f"{config_path}: unknown setting {key!r}")
        values[key] = _coerce(key, value, str(config_path))
    for spec in SETTINGS:
        if spec.env in env:
            values[spec.name] = _coerce(spec.name, env[spec.env], f"${spec.env}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _BY_NAME:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value, "the command line")

    if not values["secret_key"]:
        values["secret_key"] = _load_or_create_secret(root)
    settings = Settings(environment=environment, data_dir=root, **values)
    _check(settings)
    return settings


def _read_config(path: Path, *, named_by: str | None) -> dict[str, Any]:
    """The TOML settings in `path`; one named by a variable must exist (a typo must not start a
    server with every default)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if named_by is None:
            raise
        raise SettingsError(f"${named_by} names {path}, which does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from exc


def _load_or_create_secret(root: Path) -> str:
    path = root / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    secret = secrets.token_urlsafe(48)
    # Created with owner-only permissions before the secret is written, so it is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return secret


def _check(settings: Settings) -> None:
    for spec in SETTINGS:
        value = getattr(settings, spec.name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise SettingsError(f"setting {spec.name!r} must not be negative (got {value})")
    for spec in SETTINGS:
        value = getattr(settings, spec.name)
        if spec.choices and value not in spec.choices:
            raise SettingsError(f"setting {spec.name!r} must be {' or '.join(spec.choices)} (got {value!r})")
    # One sentence for the graphics limits, whose minimums differ.
    if settings.graphical_wall_time_s < 1 or settings.graphics_max_frames < 1 or settings.graphics_max_dimension < 16:
        raise SettingsError(
            "settings 'graphical_wall_time_s' and 'graphics_max_frames' must be at least 1,"
            " 'graphics_max_dimension' at least 16"
        )
    minimums = sorted({s.minimum for s in SETTINGS if s.minimum is not None})
    for minimum in minimums:
        too_small = [s.name for s in SETTINGS if s.minimum == minimum and getattr(settings, s.name) < minimum]
        if too_small:
            raise SettingsError(f"settings {', '.join(map(repr, too_small))} must be at least {minimum}")
    if settings.token_days > settings.token_max_days:
        raise SettingsError("setting 'token_days' must not exceed 'token_max_days'")
    if not 1 <= settings.port <= 65535:
        raise SettingsError(f"setting 'port' must be between 1 and 65535 (got {settings.port})")
    # A typo in the allow-list must stop start-up, not refuse uploads.
    unknown = sorted(parse_allowed(settings.file_types_allowed) - set(KINDS))
    if unknown:
        raise SettingsError(
            f"setting 'file_types_allowed': unknown type(s) {', '.join(unknown)}; known: {', '.join(KINDS)}, none"
        )
    if not _is_clock_time(settings.retention_purge_time):
        raise SettingsError(
            f"setting 'retention_purge_time' must be a local time HH:MM (got {settings.retention_purge_time!r})"
        )
    base = settings.asset_base_url
    if base and not base.startswith(("http://", "https://", "/")):
        raise SettingsError(f"setting 'asset_base_url' must be an http(s) URL or a path starting with / (got {base!r})")
    if settings.runner_mode == "remote" or settings.runner_broker_url:
        _check_broker(settings)
    if not _PLAIN_NAME.match(settings.worker_region):
        raise SettingsError(
            "setting 'worker_region' is 1 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )
    if settings.sync_central_url and not _is_central_url(settings.sync_central_url):
        raise SettingsError(
            f"setting 'sync_central_url' must be http(s)://host[:port] or empty (got {settings.sync_central_url!r})"
        )
    if settings.room_name and not _is_instance_name(settings.room_name):
        raise SettingsError(
            f"setting 'room_name' must be at most {MAX_ROOM_NAME_BYTES} bytes of printable text without dots"
            f" (got {settings.room_name!r})"
        )
    if settings.sandbox_cpuset and not _is_cpu_list(settings.sandbox_cpuset):
        raise SettingsError(
            "setting 'sandbox_cpuset' must be CPU numbers and ascending ranges separated by commas, e.g. 0 or"
            f" 0-1 or 0,2 (got {settings.sandbox_cpuset!r})"
        )
    if settings.image_registry and not _REGISTRY.fullmatch(settings.image_registry):
        raise SettingsError(
            "setting 'image_registry' must be host[:port][/path] without a scheme or a tag, e.g."
            f" registry.example:5000/school (got {settings.image_registry!r})"
        )
    _check_sync_tls(settings)
    if settings.tls == "files" and not (settings.tls_cert_file and settings.tls_key_file):
        raise SettingsError("tls = files needs both 'tls_cert_file' and 'tls_key_file'")
    if settings.backup_time and not _is_clock_time(settings.backup_time):
        raise SettingsError(f"setting 'backup_time' must be HH:MM (24-hour) or empty (got {settings.backup_time!r})")
    if settings.backup_passphrase_file:
        passphrase_file = Path(settings.backup_passphrase_file).expanduser().resolve()
        if passphrase_file.is_relative_to(settings.backup_dir.expanduser().resolve()):
            raise SettingsError(
                "setting 'backup_passphrase_file' is inside the backup folder: whoever has the backups would have"
                " the passphrase too; keep it elsewhere"
            )
    if settings.environment == "production":
        if settings.debug:
            raise SettingsError("debug is on: production refuses to start with debug enabled")
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"secret_key is shorter than {MIN_SECRET_LENGTH} characters: production refuses a weak secret"
            )


# identity.public_key_text's form: "ed25519:" and 32 bytes in unpadded base64url.
_ED25519_KEY = re.compile(r"ed25519:[A-Za-z0-9_-]{43}")


def _check_sync_tls(settings: Settings) -> None:
    if settings.sync_central_key and not _ED25519_KEY.fullmatch(settings.sync_central_key):
        raise SettingsError(
            "setting 'sync_central_key' must be a public key as `labrunner identity` prints it (ed25519:...)"
            f" (got {settings.sync_central_key!r})"
        )
    pin, ca_file = settings.sync_central_fingerprint, settings.sync_ca_file
    if not (pin or ca_file):
        return
    if not settings.sync_central_url.startswith("https://"):
        raise SettingsError("settings 'sync_central_fingerprint' and 'sync_ca_file' need an https sync_central_url")
    if pin and ca_file:
        raise SettingsError(
            "set 'sync_central_fingerprint' or 'sync_ca_file', not both: a pinned certificate is trusted alone"
        )
    if pin and not is_sha256_fingerprint(pin):
        raise SettingsError(
            "setting 'sync_central_fingerprint' must be a SHA-256 fingerprint, 64 hex digits (colons allowed),"
            f" as `labrunner tls` prints it on the central instance (got {pin!r})"
        )
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise SettingsError(f"setting 'sync_ca_file': {ca_file} is not a file")


def is_sha256_fingerprint(text: str) -> bool:
    digits = text.replace(":", "").strip()
    return len(digits) == 64 and all(c in "0123456789abcdefABCDEF" for c in digits)


_PLAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def _check_broker(settings: Settings) -> None:
    parts = urlsplit(settings.runner_broker_url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise SettingsError(
            "setting 'runner_broker_url' must be redis://USER:PASSWORD@HOST:PORT/DB or rediss://… when"
            f" runner_mode = remote (got {'an empty value' if not parts.scheme else 'another kind of URL'})"
        )


def _is_central_url(text: str) -> bool:
    """An http(s) origin, optionally with a path prefix: the outbox appends /api/sync/bundles."""
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.query or parts.fragment)


def _is_instance_name(text: str) -> bool:
    """A DNS-SD instance name is one DNS label: a dot would split it, and control characters have no
    place in a name people pick from a list."""
    return len(text.encode()) <= MAX_ROOM_NAME_BYTES and "." not in text and text.isprintable()


_CPU_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def _is_cpu_list(text: str) -> bool:
    """A cpuset list (0, 0-1, 0,2-3): the engine refuses anything else only when a container starts."""
    for part in text.split(","):
        found = _CPU_RANGE.fullmatch(part)
        if found is None or (found[2] is not None and int(found[2]) < int(found[1])):
            return False
    return True


def _is_clock_time(text: str) -> bool:
    """HH:MM on a 24-hour clock ('²'.isdigit() is True, hence isascii)."""
    hours, colon, minutes = text.partition(":")
    digits = hours + minutes
    return (
        bool(colon)
        and len(hours) == len(minutes) == 2
        and digits.isascii()
        and digits.isdigit()
        and (int(hours) < 24 and int(minutes) < 60)
    )
