"""The file side of isolation: empty every writable place, lay out a fresh run directory.

Everything here runs only while no program is alive (the reaper has run), so nothing races with
it. Still, every entry was made by untrusted code: symlinks are never followed, and directories a
program made unreadable are opened up before they are emptied.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from sandbox.protocol import SCRATCH_DIRS, WORK_DIR, Job

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the build directory
    data: bytes
    executable: bool


def reset_scratch() -> None:
    """Empty /work, /tmp and the shared-memory mounts, and remove System V IPC objects: nothing of
    a test survives into the next."""
    remove_sysv_ipc()
    for path in SCRATCH_DIRS:
        if path == WORK_DIR:
            # /work belongs to the sandbox uid, so a program may have locked it or written
            # extended attributes on it (a note for the next test); /tmp and the /dev mounts are
            # root's (sticky, world-writable) and cannot be changed by it.
            os.chmod(path, 0o700)
            for name in os.listxattr(path):
                os.removexattr(path, name)
        try:
            empty_directory(path)
        except FileNotFoundError:
            continue  # a mount this engine does not provide (e.g. /dev/mqueue)


def empty_directory(path: str) -> None:
    # Subdirectories are moved up to the top level and dissolved there one level at a time, so a
    # program's arbitrarily deep tree needs neither recursion nor an open descriptor per level.
    top = os.open(path, _DIR_FLAGS)
    spare_names = (f".labrunner-wipe-{n}" for n in itertools.count())
    try:
        while entries := list(os.scandir(top)):
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    _dissolve(top, entry.name, spare_names)
                else:
                    os.unlink(entry.name, dir_fd=top)
    finally:
        os.close(top)


def _dissolve(top: int, name: str, spare_names: Iterator[str]) -> None:
    os.chmod(name, 0o700, dir_fd=top)
    fd = os.open(name, _DIR_FLAGS, dir_fd=top)
    try:
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.name, 0o700, dir_fd=fd)
                _move_up(fd, entry.name, top, spare_names)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=top)


def _move_up(parent: int, name: str, top: int, spare_names: Iterator[str]) -> None:
    for spare in spare_names:
        try:
            os.rename(name, spare, src_dir_fd=parent, dst_dir_fd=top)
            return
        except OSError as exc:
            # The program may already have used this name; any other failure is real.
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise


def write_build_dir(build_dir: str, job: Job) -> None:
    """The job's input files and the source, ready for the compiler (or to run as they are).

    The source goes last: it takes the place of an input file of the same name.
    """
    os.makedirs(build_dir, mode=0o700)
    for name, data in (*((f.name, f.data) for f in job.files), (job.source_name, job.source)):
        if os.sep in name or name in ("", ".", ".."):
            raise ValueError(f"unsafe file name {name!r}")
        with open(os.path.join(build_dir, name), "wb") as out:
            out.write(data)


def snapshot(build_dir: str) -> list[Artifact]:
    """Every regular file under build_dir: what each test's run directory starts from.

    Kept in the harness's memory rather than on disk, where a test could alter it for the next.
    """
    artifacts: list[Artifact] = []
    for root, _dirs, files in os.walk(build_dir):
        for name in files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                continue  # a symlink or fifo the compile step made: never followed, never copied
            with open(path, "rb") as source:
                data = source.read()
            executable = bool(info.st_mode & stat.S_IXUSR)
            artifacts.append(Artifact(os.path.relpath(path, build_dir), data, executable))
    return artifacts


def lay_out(run_dir: str, artifacts: list[Artifact]) -> None:
    """A fresh run directory holding read-only copies of the artifacts; new files may be added."""
    os.makedirs(run_dir, mode=0o755)
    for artifact in artifacts:
        path = os.path.join(run_dir, artifact.path)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "xb") as out:
            out.write(artifact.data)
        os.chmod(path, 0o555 if artifact.executable else 0o444)


# System V message queues, shared memory and semaphore sets outlive the process that made them
# (even within the container's private IPC namespace), so one test could leave its stdin in a
# queue for a later, visible test to print. They belong to the sandbox uid: the harness may remove them.
_IPC_RMID = 0
_SYSV_IPC = ("msg", "shm", "sem")


def remove_sysv_ipc() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    removers = {
        "msg": lambda ident: libc.msgctl(ident, _IPC_RMID, None),
        "shm": lambda ident: libc.shmctl(ident, _IPC_RMID, None),
        "sem": lambda ident: libc.semctl(ident, 0, _IPC_RMID),
    }
    removed = 0
    for kind in _SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as table:
                rows = table.read().splitlines()[1:]
        except FileNotFoundError:
            continue  # a kernel without System V IPC
        for row in rows:
            ident = int(row.split()[1])
            if removers[kind](ident) == 0:
                removed += 1
    return removed
