"""`labrunner backup` and `labrunner restore` as real processes: exit codes and what they print."""

from __future__ import annotations

from pathlib import Path

from tests.core.test_cli import cli

PASSWORD = "a-long-admin-password"


def test_backup_verify_and_restore_from_the_command_line(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    made = cli(source, "users", "create", "--role", "admin", "--username", "boss", "--password-stdin", stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    backup = cli(source, "backup", "--passphrase-stdin", stdin="a secret phrase\n")
    assert backup.returncode == 0, backup.stderr
    assert "backup written:" in backup.stdout and "encrypted" in backup.stdout and "users 1" in backup.stdout
    assert "last backup: ok" in backup.stdout
    archive = next((source / "backups").glob("labrunner-backup-*.tar.age"))
    status = cli(source, "backup", "--status")
    assert status.returncode == 0 and "last backup: ok" in status.stdout and archive.name in status.stdout

    drill = cli(source, "backup", "--verify", str(archive), "--passphrase-stdin", stdin="a secret phrase\n")
    assert drill.returncode == 0 and drill.stdout.startswith("OK: "), drill
    wrong = cli(target, "restore", str(archive), "--passphrase-stdin", stdin="not it\n")
    assert wrong.returncode == 1 and "backup_wrong_passphrase" in wrong.stderr, wrong
    restored = cli(target, "restore", str(archive), "--passphrase-stdin", stdin="a secret phrase\n")
    assert restored.returncode == 0 and "restored " in restored.stdout, restored
    assert (target / "appliance-id").read_text() == (source / "appliance-id").read_text()

    damaged = tmp_path / "damaged.tar.age"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged.write_bytes(bytes(data))
    refused = cli(target, "backup", "--verify", str(damaged), "--passphrase-stdin", stdin="a secret phrase\n")
    assert refused.returncode == 1 and "backup_corrupt" in refused.stderr, refused
