"""A backup under stress: runs keep being served while one is taken; kill -9 in the middle leaves the
previous backup intact and no partial file that counts; a full disk fails clearly with no archive."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import backup_archive, backups, clock, migrations
from appliance.app_keys import BLOBS
from appliance.settings import Settings
from tests.conftest import REPO_ROOT
from tests.ops.conftest import Classroom


async def test_runs_are_served_while_a_backup_is_taken(classroom: Classroom, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup is held in the middle of writing its archive while a student runs and submits."""
    writing, release = threading.Event(), threading.Event()
    add_file = backup_archive.ArchiveWriter.add_file

    def held(self: backup_archive.ArchiveWriter, name: str, path: Path) -> bool:
        if name == backup_archive.DB_MEMBER:
            writing.set()
            assert release.wait(30)
        return add_file(self, name, path)

    monkeypatch.setattr(backup_archive.ArchiveWriter, "add_file", held)
    backup = asyncio.create_task(classroom.admin.post("/api/admin/backups"))
    try:
        assert await asyncio.to_thread(writing.wait, 30)
        student = classroom.student
        run = await student.post("/api/runs", json={"language": "python", "code": "print(3)", "stdin": ""})
        assert run.status == 202, run
        assert (await student.get(f"/api/runs/{run.json['id']}?wait=10")).json["status"] == "done"
        code = {"language": "python", "code": "print(4)"}
        submitted = await student.post(f"/api/problems/{classroom.problem_id}/submissions", json=code)
        assert submitted.status == 202, submitted
        assert (await student.get(f"/api/submissions/{submitted.json['id']}?wait=10")).json["status"] == "done"
        # A second backup meanwhile is refused, not run beside the first.
        again = await classroom.admin.post("/api/admin/backups")
        assert again.status == 409 and again.error_code == "maintenance_running", again
        assert not backup.done()
    finally:
        release.set()
    reply = await backup
    assert reply.status == 201, reply


def _backup_process(settings: Settings, script: str, **popen: object) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from appliance.settings import load_settings
        from appliance import backups, backup_archive
        settings = load_settings(data_dir=Path({str(settings.data_dir)!r}), environ={{}})
        """
    ) + textwrap.dedent(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


async def test_kill_9_during_a_backup_leaves_the_previous_one_intact(classroom: Classroom) -> None:
    settings = classroom.server.settings
    first = (await classroom.admin.post("/api/admin/backups")).json["archive"]
    previous = (settings.backup_dir / first).read_bytes()
    # A backup in another process, stopped for good in the middle of writing its archive.
    process = _backup_process(
        settings,
        """
        import time
        add_file = backup_archive.ArchiveWriter.add_file
        def slow(self, name, path):
            done = add_file(self, name, path)
            print("wrote", name, flush=True)
            time.sleep(60)
            return done
        backup_archive.ArchiveWriter.add_file = slow
        asyncio.run(backups.backup_now(settings))
        """,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        assert line.startswith("wrote"), process.stderr.read() if process.stderr else line
        partials = list(settings.backup_dir.glob(".partial-*"))
        assert len(partials) == 1 and partials[0].stat().st_size > 0
        assert len(list(settings.data_dir.glob(".backup-work-*"))) == 1
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(10)
    # The previous backup is untouched and still the only one; the partial counts as none.
    assert [a.path.name for a in backups.archives(settings.backup_dir)] == [first]
    assert (settings.backup_dir / first).read_bytes() == previous
    # The next backup clears the partial away.
    later = await classroom.admin.post("/api/admin/backups")
    assert later.status == 201, later
    assert not list(settings.backup_dir.glob(".partial-*"))
    assert not list(settings.data_dir.glob(".backup-work-*"))


async def test_a_full_disk_fails_clearly_and_leaves_no_archive(classroom: Classroom) -> None:
    settings = classroom.server.settings
    # Blobs larger than the file size limit the process gets: the archive cannot be written whole.
    classroom.server.app[BLOBS].put(os.urandom(3 << 20))
    limit = settings.db_path.stat().st_size + (1 << 20)
    process = _backup_process(
        settings,
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from appliance.errors import AppError
        try:
            asyncio.run(backups.backup_now(settings))
        except AppError as exc:
            print(exc.code, exc.message)
            sys.exit(1)
        """,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, (out, err)
    assert out.startswith("backup_disk_full the disk filled up"), (out, err)
    assert list(settings.backup_dir.iterdir()) == []
    assert not list(settings.data_dir.glob(".backup-work-*"))


async def test_too_little_free_space_is_refused_before_writing(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = classroom.server.settings
    usage = backups.shutil.disk_usage(settings.data_dir)
    monkeypatch.setattr(backups.shutil, "disk_usage", lambda path: usage._replace(free=50 << 20))
    reply = await classroom.admin.post("/api/admin/backups")
    assert reply.status == 503 and reply.error_code == "backup_no_space", reply
    assert "100 MiB must stay free" in reply.error["message"]
    assert not settings.backup_dir.exists() or list(settings.backup_dir.iterdir()) == []
    history = (await classroom.admin.get("/api/admin/jobs/history?job=backup")).json["runs"]
    assert history[0]["outcome"] == "failed" and history[0]["detail"]["error"]["code"] == "backup_no_space"


def test_a_backup_folder_that_cannot_be_written_fails_clearly(
    settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup_folder the server cannot create or write into (the Debian package's service may write
    only where its unit allows) is a clear refusal with a code, not a traceback, and writes nothing."""
    (tmp_path / "a-file").write_text("not a folder")
    blocked = settings_factory(backup_folder=str(tmp_path / "a-file" / "backups"))
    with pytest.raises(backups.BackupFailed) as refused:
        backups.write_backup(blocked, passphrase=None, now=clock.now())
    assert refused.value.code == "backup_folder_unwritable" and "a-file/backups" in refused.value.message

    settings = settings_factory(backup_folder=str(tmp_path / "backups"))
    migrations.migrate(settings.db_path, settings.backup_dir)
    (tmp_path / "backups").mkdir(exist_ok=True)
    opened = Path.open

    def read_only(path: Path, *args: object, **kwargs: object) -> object:
        """The folder exists but is read-only for the server, as outside ReadWritePaths under ProtectSystem=strict."""
        if path.name.startswith(backups.PARTIAL_PREFIX):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return opened(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", read_only)
    with pytest.raises(backups.BackupFailed) as refused:
        backups.write_backup(settings, passphrase=None, now=clock.now())
    assert refused.value.code == "backup_folder_unwritable" and "Read-only" in refused.value.message
    assert list((tmp_path / "backups").iterdir()) == []
