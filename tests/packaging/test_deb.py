"""The Debian package (packaging/build-deb.sh) installed into a clean Debian root: a container from
the sandbox's Debian base image, with the host's Docker socket mounted so the server drives the
real engine and /healthz can be all ok.

The base has adduser, passwd and init-system-helpers but neither docker.io nor systemd, and the
container has no network (no apt): a tiny package that Provides both stands in for them, so dpkg
still checks every dependency, and the `docker` group gets the socket's group id, as docker.io's
would own it. Without systemd (a container, a chroot) the package still installs, and the server is
started the way the unit starts it (its User, groups, Environment and ExecStart, read from the
installed unit). Then the same under a real systemd: the base plus Debian's systemd (an image built
once and kept, `labrunner-deb-test-systemd:<base tag>`), booted in a container with CAP_SYS_ADMIN
and its own cgroup namespace, where the hardened unit itself runs the server, restarts it after
kill -9 and is stopped and started around an upgrade. On the host, `systemd-analyze verify` checks
the unit and `systemd-analyze security` scores it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import image
from tests.packaging.conftest import BUILD_S
from tests.requirements import require_sandbox, unavailable

PORT = 8080  # the package's config.toml leaves the default port
CONFIG = "/etc/labrunner/config.toml"
DATA = "/var/lib/labrunner"
UNIT = "/lib/systemd/system/labrunner.service"
PROBE = Path(__file__).with_name("deb_probe.py")
LINK = re.compile(rf"http://127\.0\.0\.1:{PORT}/desktop/setup/[A-Za-z0-9_-]+")
# The unit's hardening, as `systemd-analyze security` scores it (0 safest, 10 none): a regression guard.
MAX_EXPOSURE = 2.0
STEP_S = 300


def need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        unavailable(f"{', '.join(missing)} missing: run packaging/ensure-deb-tools.sh")


@pytest.fixture(scope="module")
def debs(server_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of the package from the same binary (N and N+1) and the stand-in for docker.io
    and systemd, in one folder."""
    need("dpkg-deb")
    folder = tmp_path_factory.mktemp("debs")
    for suffix in ("+test1", "+test2"):
        built = subprocess.run(
            ["bash", "packaging/build-deb.sh", "--version-suffix", suffix, "--out", str(folder), str(server_binary)],
            capture_output=True,
            text=True,
            timeout=STEP_S,
            cwd=server_binary.parents[1],
        )
        assert built.returncode == 0, built.stderr
        print(built.stderr.strip())
    stub = tmp_path_factory.mktemp("stub")
    (stub / "DEBIAN").mkdir()
    (stub / "DEBIAN" / "control").write_text(
        "Package: labrunner-test-host-services\nVersion: 1\nArchitecture: all\n"
        "Maintainer: Labrunner tests <tests@localhost>\nProvides: docker.io, systemd\n"
        "Description: stands in for docker.io and systemd in the test container\n"
        " The engine is the host's, through the mounted socket; systemd cannot run here.\n"
    )
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(stub), str(folder / "stub.deb")],
        check=True,
        capture_output=True,
        timeout=STEP_S,
    )
    return folder


def docker_socket() -> Path:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        unavailable(f"the test mounts the engine's socket into its container; DOCKER_HOST is {host}")
    return Path(host.removeprefix("unix://"))


def systemd_image() -> str:
    """The sandbox's Debian base plus Debian's systemd: built once (it needs Debian's mirror) and kept."""
    ref = f"labrunner-deb-test-systemd:{image.base_ref().rpartition(':')[2]}"
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False).returncode == 0:
        return ref
    recipe = (
        f"FROM {image.base_ref()}\n"
        "RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        " systemd systemd-sysv && rm -rf /var/lib/apt/lists/*\n"
    )
    built = subprocess.run(
        ["docker", "build", "-q", "-t", ref, "-"], input=recipe, capture_output=True, text=True, timeout=STEP_S
    )
    if built.returncode != 0:
        unavailable(f"cannot build {ref} (Debian's systemd, from Debian's mirror): {built.stderr[-2000:]}")
    return ref


class Debian:
    """A clean Debian root: a container from the sandbox's Debian base image (with `systemd`, the
    base plus systemd, booted), removed by `remove`."""

    def __init__(self, debs: Path, *, systemd: bool = False) -> None:
        self.name = f"labrunner-deb-test-{uuid.uuid4().hex[:10]}"
        self.debs = debs
        self.systemd = systemd

    def start(self) -> None:
        socket = docker_socket()
        if self.systemd:
            # systemd as PID 1: it mounts its own cgroup tree and sets up each unit's namespaces.
            boot = [
                *("--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"),
                *("--security-opt", "apparmor=unconfined", "--cgroupns=private", "--tmpfs", "/run"),
                *("--tmpfs", "/run/lock", "--entrypoint", "/lib/systemd/systemd", systemd_image()),
            ]
        else:
            boot = ["--init", "--entrypoint", "sleep", image.base_ref(), "infinity"]
        subprocess.run(
            [
                *("docker", "run", "-d", "--name", self.name, "--label", "labrunner-test=deb"),
                *("--network", "none", "-v", f"{socket}:/var/run/docker.sock", "-v", f"{self.debs}:/debs:ro"),
                *("-v", f"{PROBE}:/probe.py:ro", *boot),
            ],
            check=True,
            capture_output=True,
            timeout=STEP_S,
        )
        if self.systemd:
            # systemctl answers only once systemd listens on its socket, a moment after the start.
            self.sh(
                "for _ in $(seq 240); do case $(systemctl is-system-running --wait 2>/dev/null) in"
                " running | degraded) break ;; esac; sleep 0.25; done"
            )
            booted = self.sh("systemctl is-system-running", check=False).stdout.strip()
            assert booted in ("running", "degraded"), booted + self.sh("systemctl --failed", check=False).stdout
        # docker.io's postinst would make the group that owns the socket.
        self.sh(f"groupadd --system --gid {socket.stat().st_gid} docker")

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "exec", self.name, "sh", "-c", script], capture_output=True, text=True, timeout=STEP_S
        )
        if check:
            assert done.returncode == 0, f"$ {script}\n{done.stdout}\n{done.stderr}"
        return done

    def install(self, version: str) -> str:
        """dpkg -i the package of `version`; its output (the maintainer scripts' messages)."""
        done = self.sh(f"dpkg -i /debs/labrunner_0.1.0{version}_*.deb 2>&1")
        return done.stdout

    def installed(self) -> str:
        return self.sh("dpkg-query -W -f '${Version} ${Status}' labrunner", check=False).stdout

    def serve(self) -> None:
        """Without systemd: start the server as labrunner.service would: its User and Group with their
        groups (the docker group is SupplementaryGroups=), only its Environment=, its ExecStart=, from /.
        Its own session, so a signal reaches the binary's bootloader and the program it unpacked alike."""
        unit = self.sh(f"cat {UNIT}").stdout
        lines = [line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")]
        service = {key: value for key, value in lines if key != "Environment"}
        environment = [value for key, value in lines if key == "Environment"]
        assert service["User"] == service["Group"] == "labrunner" and service["SupplementaryGroups"] == "docker"
        command = (
            f"setpriv --reuid {service['User']} --regid {service['Group']} --init-groups"
            f" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME={DATA} USER=labrunner"
            f" {' '.join(map(shlex.quote, environment))} {service['ExecStart']}"
        )
        inner = f"echo $$ >/tmp/serve.pid; exec {command} >>/tmp/serve.log 2>&1"
        self.sh(f"cd / && setsid sh -c {shlex.quote(inner)} </dev/null >/dev/null 2>&1 &")
        self.probe("health", str(PORT))

    def running(self) -> None:
        """The server serves: under systemd the package started it; without, it is started by hand."""
        if self.systemd:
            self.sh("systemctl is-active labrunner")
            self.probe("health", str(PORT))
        else:
            self.serve()

    def crash(self) -> None:
        """kill -9 the server's main process; it serves again after a start: systemd's
        Restart=on-failure, or by hand."""
        if self.systemd:
            main = self.main_pid()
            self.sh(f"kill -9 {main}")
            self.probe("down", str(PORT))
            self.probe("health", str(PORT))
            assert self.main_pid() != main
            assert self.sh("systemctl show -p NRestarts --value labrunner").stdout.strip() == "1"
        else:
            self.sh("kill -9 -$(cat /tmp/serve.pid)")  # dash's kill: a negative id is the process group
            self.probe("down", str(PORT))
            self.serve()

    def stop(self) -> None:
        if self.systemd:
            self.sh("systemctl stop labrunner")
        else:
            self.sh("kill -TERM -$(cat /tmp/serve.pid)")
        self.probe("down", str(PORT))

    def main_pid(self) -> str:
        return self.sh("systemctl show -p MainPID --value labrunner").stdout.strip()

    def probe(self, *args: str) -> str:
        done = self.sh(f"python3 /probe.py {shlex.join(args)}", check=False)
        assert done.returncode == 0, done.stdout + done.stderr + self.sh("cat /tmp/serve.log", check=False).stdout
        return done.stdout.strip()

    def as_labrunner(self, *args: str) -> str:
        return self.sh(f"runuser -u labrunner -- env LABRUNNER_CONFIG={CONFIG} labrunner {shlex.join(args)}").stdout

    def usernames(self) -> list[str]:
        """The accounts in the database in the data folder."""
        query = "SELECT username FROM users ORDER BY username"
        database = f"{DATA}/labrunner.sqlite3"
        script = f"import sqlite3; print(*(r[0] for r in sqlite3.connect('{database}').execute('{query}')))"
        return self.sh(f"python3 -c {shlex.quote(script)}").stdout.split()

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, timeout=STEP_S, check=False)


@pytest.fixture(params=[False, True], ids=["without-systemd", "systemd"])
def debian(debs: Path, request: pytest.FixtureRequest) -> Iterator[Debian]:
    require_sandbox()
    root = Debian(debs, systemd=request.param)
    try:
        root.start()
        root.sh("dpkg -i /debs/stub.deb")
        yield root
    finally:
        root.remove()


def set_up_first_admin(root: Debian, install_output: str) -> str:
    """Use the setup link the install printed, from the machine's loopback; the teacher's session cookie."""
    link = LINK.search(install_output)
    assert link is not None, install_output
    return root.probe("setup", link.group(0))


@pytest.mark.timeout(BUILD_S + 2 * STEP_S)
def test_the_package_installs_and_serves_from_var_lib_labrunner_and_survives_kill_9(debian: Debian) -> None:
    output = debian.install("+test1")
    assert debian.installed() == "0.1.0+test1 install ok installed"
    assert "only from 127.0.0.1" in output, output
    assert ("systemd is not running here" in output) is not debian.systemd, output
    # Under systemd the unit (Type=notify) has started by then: the link is the running server's.
    assert ("The server is not running yet" in output) is not debian.systemd, output

    owners = debian.sh(f"stat -c '%n %U:%G %a' /usr/bin/labrunner {UNIT} /etc/labrunner {CONFIG} {DATA}").stdout
    assert owners.splitlines() == [
        "/usr/bin/labrunner root:root 755",
        f"{UNIT} root:root 644",
        "/etc/labrunner root:labrunner 750",
        f"{CONFIG} root:labrunner 640",
        f"{DATA} labrunner:labrunner 750",
    ]
    assert CONFIG in debian.sh("dpkg-query -W -f '${Conffiles}' labrunner").stdout
    user = debian.sh("getent passwd labrunner").stdout.strip().split(":")
    assert user[5:] == [DATA, "/usr/sbin/nologin"] and int(user[2]) < 1000, user  # a system user
    assert set(debian.sh("id -nG labrunner").stdout.split()) == {"labrunner", "docker"}
    debian.sh("test -L /etc/systemd/system/multi-user.target.wants/labrunner.service")  # enabled for boot

    debian.running()
    cookie = set_up_first_admin(debian, output)
    assert debian.probe("me", str(PORT), cookie) == "tina"
    assert debian.usernames() == ["ada", "tina"]
    # Nothing went to another data folder (the labrunner user's home is the data folder).
    assert debian.sh(f"ls -A {DATA}").stdout.split().count(".local") == 0

    secret = debian.sh(f"sha256sum {DATA}/secret.key").stdout
    debian.crash()
    assert debian.probe("me", str(PORT), cookie) == "tina"  # the teacher's session survived
    assert debian.usernames() == ["ada", "tina"]
    assert debian.sh(f"sha256sum {DATA}/secret.key").stdout == secret
    if debian.systemd:  # the server's lines are in the journal
        journal = debian.sh("journalctl -u labrunner --no-pager").stdout
        assert f"Data folder: {DATA}  (environment: production)" in journal, journal[-3000:]
    debian.stop()


@pytest.mark.timeout(BUILD_S + 3 * STEP_S)
def test_an_upgrade_backs_up_first_and_migrates_a_removal_keeps_the_data_and_a_purge_deletes_it(
    debian: Debian,
) -> None:
    output = debian.install("+test1")
    debian.running()
    set_up_first_admin(debian, output)
    if not debian.systemd:
        debian.stop()  # what the prerm has systemd do
    backups = f"ls {DATA}/backups/ | grep -c '^labrunner-backup-' || true"
    before = int(debian.sh(backups).stdout)

    # A backup that fails refuses the upgrade, and the old version stays installed.
    debian.sh(f"echo 'backup_folder = \"/nonexistent/backups\"' >>{CONFIG}")
    refused = debian.sh("dpkg -i /debs/labrunner_0.1.0+test2_*.deb 2>&1", check=False)
    assert refused.returncode != 0 and "the upgrade is refused" in refused.stdout, refused.stdout
    assert "(backup_folder_unwritable)" in refused.stdout and "Traceback" not in refused.stdout, refused.stdout
    assert debian.installed() == "0.1.0+test1 install ok installed"
    if debian.systemd:
        debian.running()  # the old version's postinst (abort-upgrade) started it again
    debian.sh(f"sed -i '/^backup_folder/d' {CONFIG}")

    upgraded = debian.install("+test2")
    assert debian.installed() == "0.1.0+test2 install ok installed"
    assert "backing up /var/lib/labrunner before the upgrade from 0.1.0+test1" in upgraded, upgraded
    assert int(debian.sh(backups).stdout) == before + 1
    assert "labrunner: migrating the database" in upgraded and LINK.search(upgraded) is None, upgraded
    status = debian.as_labrunner("migrate", "--status").splitlines()
    assert status and all(": applied " in line for line in status), status
    debian.running()
    assert debian.usernames() == ["ada", "tina"]
    if not debian.systemd:
        debian.stop()

    debian.sh("dpkg -r labrunner")
    assert debian.installed() == "0.1.0+test2 deinstall ok config-files"
    debian.probe("down", str(PORT))  # the prerm stopped it
    debian.sh(f"test ! -e /usr/bin/labrunner && test -f {CONFIG} && test -f {DATA}/labrunner.sqlite3")
    debian.sh(f"ls {DATA}/backups/labrunner-backup-*")
    debian.sh("getent passwd labrunner")
    again = debian.install("+test2")  # a reinstall finds the user and the data: nothing to set up
    assert LINK.search(again) is None and debian.usernames() == ["ada", "tina"], again

    debian.sh("dpkg -P labrunner")
    assert debian.installed() == ""
    debian.probe("down", str(PORT))
    debian.sh(f"test ! -e {DATA} && test ! -e /etc/labrunner")
    for database in ("passwd", "group"):
        assert debian.sh(f"getent {database} labrunner", check=False).returncode == 2
    debian.sh("getent group docker")  # not ours to remove


@pytest.mark.timeout(BUILD_S + STEP_S)
def test_the_unit_file_verifies_and_its_hardening_scores_well(debs: Path, tmp_path: Path) -> None:
    need("systemd-analyze", "dpkg-deb")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(next(debs.glob("labrunner_*+test1_*.deb"))), str(root)], check=True)
    # verify resolves the unit's dependencies (sysinit.target, ...): the host's units beside it.
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    verified = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", UNIT], capture_output=True, text=True, timeout=STEP_S
    )
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, ""), verified
    scored = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", UNIT],
        capture_output=True,
        text=True,
        timeout=STEP_S,
    )
    assert scored.returncode == 0, scored.stderr
    found = re.search(r"Overall exposure level for labrunner\.service: (\d+\.\d+) (\w+)", scored.stdout)
    assert found is not None, scored.stdout
    print(found.group(0))
    assert float(found.group(1)) <= MAX_EXPOSURE, scored.stdout
