"""The checks `labrunner desktop` makes before it starts a server: the Docker engine, the sandbox
image (built when missing, its output shown), the database's migrations. The same checks as
`packaging/start.sh` (ensure-docker, `labrunner sandbox build`) and the server's own start."""

from __future__ import annotations

import docker
import docker.errors

from appliance import data_locks, migrations
from appliance.settings import Settings
from runner import engine, image
from runner.executor import InfraError
from ui.desktop.progress import Progress


def check_engine(progress: Progress) -> docker.DockerClient | None:
    """A client of the answering engine, or None (the server still starts: runs wait for it)."""
    progress.update("engine", "running")
    try:
        client = engine.connect()
        client.ping()
    except (InfraError, docker.errors.DockerException, OSError) as exc:
        message = exc.message if isinstance(exc, InfraError) else str(exc)
        progress.update("engine", "failed", f"{message}; runs wait until the engine is back")
        return None
    progress.update("engine", "done", f"Docker {client.version().get('Version', '')}".strip())
    return client


def ensure_image(client: docker.DockerClient | None, progress: Progress) -> None:
    """Build this version's sandbox image when it is missing or stale (minutes, shown line by line)."""
    if client is None:
        progress.update("image", "skipped", "no engine to ask")
        return
    ref = image.expected_ref()
    try:
        status = image.image_status(client, ref)
        if status == "present":
            progress.update("image", "done", ref)
            return
        progress.update("image", "running", f"{ref} is {status}: building it (takes minutes the first time)")
        image.build_image(client, lambda line: progress.note("image", line))
    except (InfraError, image.ImageBuildError) as exc:
        progress.update("image", "failed", f"{exc}; runs wait until the image is there")
        return
    finally:
        client.close()
    progress.update("image", "done", f"{ref} built")


def migrate(settings: Settings, progress: Progress) -> None:
    progress.update("database", "running")
    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        applied = migrations.migrate(settings.db_path, settings.backup_dir)
    detail = f"applied {len(applied)} migration(s)" if applied else "up to date"
    progress.update("database", "done", detail)
