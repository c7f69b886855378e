"""Settings: declared once as data, resolved as defaults < config file < environment < CLI flags.

Every limit the appliance enforces is a named setting here, so the same table drives the CLI,
the README's configuration section (a test keeps them in step) and validation.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

from appliance.file_kinds import KINDS, parse_allowed

ENVIRONMENTS = ("development", "staging", "production")
CONFIG_FILE = "config.toml"
SECRET_FILE = "secret.key"
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A setting is missing, malformed or unsafe for the chosen environment."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "0.0.0.0", "Address to listen on (0.0.0.0: every LAN interface)."),
    Setting("port", 8080, "TCP port to listen on."),
    Setting("debug", False, "Verbose errors in responses; refused in production."),
    Setting("secret_key", "", "Signing secret; generated into the data dir at first start when empty."),
    Setting("max_body_bytes", 1_048_576, "Largest request body accepted (bytes)."),
    Setting("max_string_chars", 20_000, "Longest short text field (names, titles) accepted."),
    Setting("max_statement_chars", 200_000, "Longest problem statement accepted (characters)."),
    Setting("max_code_chars", 200_000, "Longest source code accepted (characters)."),
    Setting("max_test_case_bytes", 262_144, "Largest stdin or expected output of one test case."),
    Setting("max_test_cases", 100, "Most test cases in one problem."),
    Setting("session_days", 14, "How long a login session lasts (days)."),
    Setting("min_self_register_age", 13, "Younger users cannot register themselves; a teacher creates them."),
    Setting("adult_age", 18, "Users younger than this are flagged as minors."),
    Setting(
        "login_max_failures_per_account_address",
        5,
        "Failed logins on one account from one address within the window before that address gets 429 for it.",
    ),
    Setting("login_max_failures_per_address", 20, "Failed logins per address within the window before 429."),
    Setting(
        "login_max_failures_per_account",
        10,
        "Failed logins on one account from all addresses within the window before each further attempt on it"
        " waits a growing delay (keep it above the per account and address limit).",
    ),
    Setting(
        "login_backoff_base_s", 1.0, "First delay once an account is past its failures; doubles per failure (seconds)."
    ),
    Setting("login_backoff_max_s", 30.0, "Longest delay between login attempts on one account (seconds)."),
    Setting("login_failure_window_s", 300, "Window for counting failed logins (seconds)."),
    Setting("register_max_per_address", 10, "Self-registrations from one address within the window before 429."),
    Setting("register_window_s", 3600, "Window for counting self-registrations (seconds)."),
    Setting("token_days", 90, "How long an API token lasts when its creator does not say (days)."),
    Setting("token_max_days", 365, "Longest lifetime an API token may be given (days)."),
    Setting("password_min_length", 8, "Shortest password accepted."),
    Setting("default_time_limit_ms", 2000, "Per-test time limit of a problem when none is given."),
    Setting("max_time_limit_ms", 20_000, "Largest per-test time limit a problem may set."),
    Setting("default_memory_limit_mb", 256, "Per-test memory limit of a problem when none is given."),
    Setting("max_memory_limit_mb", 1024, "Largest per-test memory limit a problem may set."),
    Setting("max_import_bytes", 10_485_760, "Largest problem archive accepted by import (bytes)."),
    Setting("workers", 2, "Sandbox jobs run at once (sized for a 2-core machine)."),
    Setting("queue_max", 500, "Jobs waiting at most; further jobs get 503."),
    Setting("max_jobs_in_flight_per_user", 3, "Queued or running jobs one student may have."),
    Setting("dedup_window_s", 30, "A same-code resubmission within this window returns the earlier job."),
    Setting(
        "submissions_per_problem_per_hour",
        30,
        "Submissions one student may make to one problem in an hour; more get 429 (staff exempt; 0: no limit).",
    ),
    Setting(
        "submissions_per_problem_per_minute",
        5,
        "Submissions one student may make to one problem in a minute, a burst limit (staff exempt; 0: no limit).",
    ),
    Setting(
        "max_running_jobs_per_user",
        0,
        "Workers one student may hold at once (rejudges share one such limit); 0: workers - 1, at least 1.",
    ),
    Setting("job_lease_s", 120, "How long a worker holds a claimed job before it is requeued."),
    Setting("infra_max_attempts", 4, "Infrastructure failures retried at most this many times per job."),
    Setting("infra_backoff_s", 2.0, "First retry delay after an infrastructure failure; doubles each time."),
    Setting("max_wait_s", 30, "Longest ?wait= a client may ask for (seconds)."),
    Setting("result_max_bytes", 65_536, "Largest stored result row; longer output is cut and kept in blobs."),
    Setting("full_output_max_bytes", 8_388_608, "Largest full output kept in the blob store per stream."),
    Setting(
        "full_output_max_bytes_per_user",
        52_428_800,
        "Most bytes of full outputs kept per user; past it a cut output says its full text was not kept.",
    ),
    Setting("full_output_expiry_days", 14, "Full outputs are deleted this many days after their job finished."),
    Setting("sandbox_runtime", "runc", "OCI runtime for sandboxes: runc or crun (registered by ensure-docker)."),
    Setting("sandbox_pool_size", 2, "Sandbox containers started ahead of time, each used for exactly one job."),
    Setting("sandbox_pids_limit", 128, "Processes and threads one sandbox may hold."),
    Setting("sandbox_output_limit_bytes", 1_048_576, "Output a program may write per stream and test."),
    Setting("sandbox_work_tmpfs_mb", 64, "Size of a sandbox's work directory (tmpfs)."),
    Setting("sandbox_tmp_tmpfs_mb", 64, "Size of a sandbox's /tmp (tmpfs)."),
    Setting("sandbox_wall_time_factor", 3.0, "Wall-time limit as a multiple of the CPU-time limit."),
    Setting("sandbox_compile_time_limit_ms", 20_000, "Time a compilation may take."),
    Setting(
        "graphical_wall_time_s",
        10.0,
        "Wall and CPU time of each test of a graphical program (pygame, turtle, tkinter, matplotlib), seconds.",
    ),
    Setting("graphics_max_frames", 20, "Most pictures kept per test of a graphical program (an animation aside)."),
    Setting("graphics_max_dimension", 800, "Longest side of a picture of a graphical program (pixels)."),
    Setting("graphics_max_image_bytes", 4_194_304, "Most bytes of pictures kept per run or submission."),
    Setting(
        "file_types_allowed",
        "text,csv,json,python,source,png,jpeg,gif,bmp,wav,ogg,mp3",
        "File types accepted, judged by content (comma-separated; also: none).",
    ),
    Setting("file_max_bytes", 4_194_304, "Largest uploaded file, and largest archive upload (bytes)."),
    Setting("file_name_max_chars", 100, "Longest file name accepted (characters)."),
    Setting("files_max_per_user", 50, "Most files one account may keep."),
    Setting("files_max_bytes_per_user", 52_428_800, "Most bytes of files one account may keep."),
    Setting(
        "file_expiry_days", 7, "Uploads are deleted this many days after upload (kept while a submission uses them)."
    ),
    Setting("archive_unpack", True, "Unpack ZIP uploads sent with unpack=true into files (false: refuse archives)."),
    Setting("archive_max_members", 50, "Most files one unpacked archive may hold."),
    Setting("archive_max_bytes", 20_971_520, "Most bytes one archive may unpack to."),
    Setting("archive_max_ratio", 100, "Largest unpacked/packed size ratio of an archive member (zip bombs)."),
    Setting("job_files_max", 20, "Most files in one run's or submission's working directory."),
    Setting("job_files_max_bytes", 16_777_216, "Most bytes of files in one run's or submission's working directory."),
    Setting("asset_max_bytes", 4_194_304, "Largest problem asset (bytes)."),
    Setting("assets_max_per_problem", 50, "Most assets one problem may have."),
    Setting("asset_base_url", "", "Base URL of asset links (a CDN or the central instance); empty: this appliance."),
    Setting("max_roster_import_rows", 300, "Most students one roster CSV import may list."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    environment: str
    data_dir: Path
    host: str
    port: int
    debug: bool
    secret_key: str
    max_body_bytes: int
    max_string_chars: int
    max_statement_chars: int
    max_code_chars: int
    max_test_case_bytes: int
    max_test_cases: int
    session_days: int
    min_self_register_age: int
    adult_age: int
    login_max_failures_per_account_address: int
    login_max_failures_per_address: int
    login_max_failures_per_account: int
    login_backoff_base_s: float
    login_backoff_max_s: float
    login_failure_window_s: int
    register_max_per_address: int
    register_window_s: int
    token_days: int
    token_max_days: int
    password_min_length: int
    default_time_limit_ms: int
    max_time_limit_ms: int
    default_memory_limit_mb: int
    max_memory_limit_mb: int
    max_import_bytes: int
    workers: int
    queue_max: int
    max_jobs_in_flight_per_user: int
    dedup_window_s: int
    submissions_per_problem_per_hour: int
    submissions_per_problem_per_minute: int
    max_running_jobs_per_user: int
    job_lease_s: int
    infra_max_attempts: int
    infra_backoff_s: float
    max_wait_s: int
    result_max_bytes: int
    full_output_max_bytes: int
    full_output_max_bytes_per_user: int
    full_output_expiry_days: int
    sandbox_runtime: str
    sandbox_pool_size: int
    sandbox_pids_limit: int
    sandbox_output_limit_bytes: int
    sandbox_work_tmpfs_mb: int
    sandbox_tmp_tmpfs_mb: int
    sandbox_wall_time_factor: float
    sandbox_compile_time_limit_ms: int
    graphical_wall_time_s: float
    graphics_max_frames: int
    graphics_max_dimension: int
    graphics_max_image_bytes: int
    file_types_allowed: str
    file_max_bytes: int
    file_name_max_chars: int
    files_max_per_user: int
    files_max_bytes_per_user: int
    file_expiry_days: int
    archive_unpack: bool
    archive_max_members: int
    archive_max_bytes: int
    archive_max_ratio: int
    job_files_max: int
    job_files_max_bytes: int
    asset_max_bytes: int
    assets_max_per_problem: int
    asset_base_url: str
    max_roster_import_rows: int

    @property
    def running_jobs_per_user(self) -> int:
        """`max_running_jobs_per_user`, with 0 resolved to a fair share: all workers but one."""
        return self.max_running_jobs_per_user or max(1, self.workers - 1)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "labrunner.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def backup_dir(self) -> Path:
        return self.data_dir / "backups"


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
    chosen_dir = data_dir or env.get("LABRUNNER_DATA_DIR") or default_data_dir(environment)
    root = Path(chosen_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)

    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    config_path = root / CONFIG_FILE
    if config_path.exists():
        try:
            file_values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{config_path}: {exc}") from exc
        for key, value in file_values.items():
            if key not in _BY_NAME:
                raise SettingsError(f"{config_path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(config_path))
    for setting in SETTINGS:
        env_name = "LABRUNNER_" + setting.name.upper()
        if env_name in env:
            values[setting.name] = _coerce(setting.name, env[env_name], f"${env_name}")
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
    for field in fields(settings):
        value = getattr(settings, field.name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise SettingsError(f"setting {field.name!r} must not be negative (got {value})")
    if settings.sandbox_runtime not in ("runc", "crun"):
        raise SettingsError(f"setting 'sandbox_runtime' must be runc or crun (got {settings.sandbox_runtime!r})")
    if settings.graphical_wall_time_s < 1 or settings.graphics_max_frames < 1 or settings.graphics_max_dimension < 16:
        raise SettingsError(
            "settings 'graphical_wall_time_s' and 'graphics_max_frames' must be at least 1,"
            " 'graphics_max_dimension' at least 16"
        )
    too_small = [
        name
        for name in (
            "login_max_failures_per_account_address",
            "login_max_failures_per_address",
            "login_max_failures_per_account",
            "login_failure_window_s",
            "register_max_per_address",
            "register_window_s",
            "token_days",
        )
        if getattr(settings, name) < 1
    ]
    if too_small:
        raise SettingsError(f"settings {', '.join(map(repr, too_small))} must be at least 1")
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
    base = settings.asset_base_url
    if base and not base.startswith(("http://", "https://", "/")):
        raise SettingsError(f"setting 'asset_base_url' must be an http(s) URL or a path starting with / (got {base!r})")
    if settings.environment == "production":
        if settings.debug:
            raise SettingsError("debug is on: production refuses to start with debug enabled")
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"secret_key is shorter than {MIN_SECRET_LENGTH} characters: production refuses a weak secret"
            )
