"""`labrunner` command line (DESIGN.md §7); `python -m appliance` is the same program."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import web

from appliance import migrations, server_record
from appliance.lan import lan_addresses
from appliance.settings import ENVIRONMENTS, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from appliance.db import Database
    from appliance.sync_export import Exported


def _urls(settings: Settings) -> list[str]:
    if settings.host in ("0.0.0.0", ""):
        hosts = [*lan_addresses(), "127.0.0.1"]
    else:
        hosts = [settings.host]
    return [f"http://{host}:{settings.port}/" for host in hosts]


async def _serve(settings: Settings) -> None:
    from appliance.runtime import create_app

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    # Where this server listens, for `labrunner desktop` to attach to (removed at a clean stop).
    server_record.write(settings.data_dir, settings.host, settings.port)
    print("Labrunner is running. Students open:", flush=True)
    for url in _urls(settings):
        print(f"  {url}", flush=True)
    print(f"Data folder: {settings.data_dir}  (environment: {settings.environment})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (service managers, `kill`) and Ctrl-C both shut down in order: stop taking
    # requests, stop the workers (their sandboxes are removed), close the database.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        print("Labrunner is stopping…", flush=True)
        server_record.remove(settings.data_dir)
        await runner.cleanup()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.status:
        for state in migrations.status(settings.db_path):
            mark = f"applied {state.applied_at}" if state.applied_at else "pending"
            print(f"{state.migration.version:04d}_{state.migration.name}: {mark}")
        return 0
    from appliance import data_locks

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        applied = migrations.migrate(settings.db_path, settings.backup_dir)
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        print("database is up to date")
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    from appliance.accounts import Accounts
    from appliance.db import Database

    migrations.migrate(settings.db_path, settings.backup_dir)
    db = Database(settings.db_path)
    await db.open()
    try:
        user = await Accounts(db, settings).create_by(None, args.username, password, args.role, args.birthdate)
        return f"created {user.role} {user.username!r} (id {user.id})"
    finally:
        await db.close()


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    if not args.password_stdin:
        print("error: pass the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    print(asyncio.run(_create_user(settings, args, password)))
    return 0


def cmd_sandbox_build(settings: Settings, args: argparse.Namespace) -> int:
    from runner.image import build

    ref = build(lambda line: print(line, flush=True))
    print(f"sandbox image ready: {ref}")
    return 0


async def _selftest(settings: Settings) -> int:
    from appliance.sandbox_wiring import DockerSandbox
    from appliance.selftest import format_table, run_checks
    from runner.executor import InfraError

    sandbox = DockerSandbox(settings)
    try:
        executor = await sandbox.new_executor()
    except InfraError as error:
        print(f"FAIL: the sandbox cannot start ({error.code}): {error.message}", file=sys.stderr)
        return 1
    try:
        results = await run_checks(executor, lambda name: print(f"  checking {name} …", flush=True))
    finally:
        await executor.close()
        await sandbox.close()
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1


def cmd_selftest(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_selftest(settings))


def _passphrase(settings: Settings, args: argparse.Namespace) -> str | None:
    from appliance.backups import passphrase_from

    if args.passphrase_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    return passphrase_from(settings)


def _describe_last(last: dict[str, object] | None) -> str:
    if last is None:
        return "last backup: none yet"
    detail = last["detail"]
    assert isinstance(detail, dict)
    what = detail.get("archive") if last["outcome"] == "ok" else detail.get("error", {}).get("message")
    return f"last backup: {last['outcome']} at {last['finished_at']} ({what})"


async def _backup(settings: Settings, passphrase: str | None) -> int:
    from appliance import data_locks, job_history
    from appliance.backups import take_backup
    from appliance.db import Database

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        migrations.migrate(settings.db_path, settings.backup_dir)
    db = Database(settings.db_path)
    await db.open()
    try:
        try:
            result = await take_backup(db, settings, trigger="cli", passphrase=passphrase)
        finally:
            print(_describe_last(await job_history.last_backup(db)))
    finally:
        await db.close()
    counts = ", ".join(f"{table} {count}" for table, count in result.tables.items() if count)
    print(
        f"backup written: {result.archive} ({result.size} bytes, {result.blobs} blobs"
        f"{', encrypted' if result.encrypted else ''})"
    )
    print(f"rows: {counts}")
    for name in result.rotated_out:
        print(f"rotated out: {name}")
    return 0


async def _backup_status(settings: Settings) -> int:
    from appliance import job_history
    from appliance.backups import archives
    from appliance.db import Database

    migrations.status(settings.db_path)
    db = Database(settings.db_path)
    await db.open()
    try:
        print(_describe_last(await job_history.last_backup(db)))
    finally:
        await db.close()
    for archive in archives(settings.backup_dir):
        print(f"  {archive.path.name}  {archive.path.stat().st_size} bytes")
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.restore import verify

    if args.status:
        return asyncio.run(_backup_status(settings))
    passphrase = _passphrase(settings, args)
    if args.verify:
        report = verify(settings, Path(args.verify), passphrase=passphrase)
        tables = sum(report["tables"].values())
        print(
            f"OK: {report['archive']} restores and checks out: appliance {report['appliance_id'][:8]},"
            f" made {report['created_at']}, schema {report['schema_version']}, {tables} rows,"
            f" {report['blobs']} blobs"
        )
        return 0
    return asyncio.run(_backup(settings, passphrase))


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.restore import restore

    result = asyncio.run(
        restore(settings, Path(args.file), passphrase=_passphrase(settings, args), as_new_machine=args.as_new_machine)
    )
    manifest = result.manifest
    print(
        f"restored {Path(args.file).name}: appliance {manifest.appliance_id[:8]}, made {manifest.data['created_at']},"
        f" {sum(manifest.tables.values())} rows"
    )
    if result.replaced is not None:
        print(f"what it replaced is kept in {result.replaced}")
    for name in result.migrated:
        print(f"applied {name}")
    if result.erased_again:
        print(f"erased again {len(result.erased_again)} student(s) erased after this backup was taken")
    return 0


def cmd_identity(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import identity

    me = identity.ensure(settings.data_dir)
    print(f"appliance id: {me.appliance_id}")
    print(f"fingerprint:  {me.fingerprint}")
    print(f"public key:   {me.public_key_text}")
    return 0


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The migrated database, open, for one command."""
    from appliance import data_locks
    from appliance.db import Database

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        migrations.migrate(settings.db_path, settings.backup_dir)
    db = Database(settings.db_path)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def _appliances_add(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.sync_appliances import register

    async with _database(settings) as db:
        added = await register(db, args.name, args.public_key)
    print(f"registered appliance {added['name']!r} (fingerprint {added['fingerprint']})")
    return 0


def cmd_appliances_add(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_appliances_add(settings, args))


async def _appliances_list(settings: Settings) -> int:
    from appliance.sync_appliances import listing

    async with _database(settings) as db:
        rows = await listing(db)
    for row in rows:
        seen = "never"
        if row["last_imported_at"]:
            seen = (
                f"generation {row['last_generation']} up to watermark {row['last_watermark']}"
                f" at {row['last_imported_at']}"
            )
        print(f"{row['name']}  {row['fingerprint']}  appliance {row['appliance_id'] or '?'}  imported: {seen}")
    if not rows:
        print("no appliances registered")
    return 0


def cmd_appliances_list(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_appliances_list(settings))


async def _export(settings: Settings, since: int) -> Exported:
    from appliance import identity
    from appliance.blobs import BlobStore
    from appliance.sync_export import export

    me = identity.ensure(settings.data_dir)
    async with _database(settings) as db:
        return await export(db, BlobStore(settings.blob_dir), settings, me, since)


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    result = asyncio.run(_export(settings, args.since))
    target = Path(args.file)
    # Under a temporary name first: a full disk or a crash never leaves half a bundle under the name.
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(result.data)
    os.replace(partial, target)
    counts = ", ".join(f"{n} {what}" for what, n in result.counts.items())
    print(
        f"bundle written: {target} (generation {result.generation}, since {result.since},"
        f" watermark {result.watermark}: {counts})"
    )
    return 0


async def _import(settings: Settings, raw: bytes) -> str:
    from appliance.blobs import BlobStore
    from appliance.sync_import import describe, import_bundle

    async with _database(settings) as db:
        return describe(await import_bundle(db, BlobStore(settings.blob_dir), settings, raw))


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.errors import Invalid, TooLarge

    path = Path(args.file)
    if not path.is_file():
        raise Invalid("bundle_not_found", f"{path} is not a file")
    # Before reading it whole into memory.
    if path.stat().st_size > settings.sync_bundle_max_bytes:
        raise TooLarge(
            "bundle_too_large", f"{path} is larger than sync_bundle_max_bytes ({settings.sync_bundle_max_bytes} bytes)"
        )
    print(asyncio.run(_import(settings, path.read_bytes())))
    return 0


async def _sync_now(settings: Settings) -> dict[str, object]:
    from appliance import job_history
    from appliance.blobs import BlobStore
    from appliance.sync_outbox import JOB_NAME, push

    async with _database(settings) as db, job_history.recorded(db, JOB_NAME, "cli") as run:
        result = await push(db, BlobStore(settings.blob_dir), settings)
        run.detail.update(result)
        return result


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    result = asyncio.run(_sync_now(settings))
    mark = f"generation {result['generation']}, watermark {result['watermark']}"
    if not result["pushed"]:
        print(f"nothing new since the last acknowledged push ({mark}) to {result['central']}")
    elif result["already"]:
        print(f"the central instance {result['central']} already had this bundle ({mark}); acknowledged")
    else:
        print(
            f"pushed to {result['central']}: changes after watermark {result['since']} up to {mark}"
            f" ({result['bytes']} bytes); acknowledged"
        )
    return 0


def cmd_desktop(settings: Settings, args: argparse.Namespace) -> int:
    from ui.desktop import run

    return run(settings, args.user)


class _VersionAction(argparse.Action):
    """`--version`: computed only when asked (it reads git and hashes the sandbox files)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from appliance.build_info import describe

        print(describe())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labrunner", description="Labrunner classroom code runner")
    parser.add_argument(
        "--version", action=_VersionAction, help="print the version, the git commit and the sandbox image, then exit"
    )
    parser.add_argument("--data-dir", help="data folder (default: per-environment platform folder)")
    parser.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: development)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the appliance")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    desktop = commands.add_parser(
        "desktop", help="the teacher's window: starts the server (or attaches to a running one) and logs in"
    )
    desktop.add_argument("--user", help="the teacher or admin to log in (default: the only or newest teacher)")
    desktop.add_argument("--host", help="address the server listens on when the window starts it")
    desktop.add_argument("--port", type=int)
    desktop.set_defaults(func=cmd_desktop)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--status", action="store_true", help="list migrations and whether they are applied")
    migrate.set_defaults(func=cmd_migrate)

    users = commands.add_parser("users", help="manage accounts").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create an account")
    create.add_argument("--role", required=True, choices=("student", "teacher", "admin"))
    create.add_argument("--username", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--birthdate", help="YYYY-MM-DD (students)")
    create.set_defaults(func=cmd_users_create)

    sandbox = commands.add_parser("sandbox", help="the sandbox image").add_subparsers(
        dest="sandbox_command", required=True
    )
    sandbox.add_parser("build", help="build the sandbox image from Debian packages").set_defaults(
        func=cmd_sandbox_build
    )
    backup = commands.add_parser("backup", help="back up the database and files into the backup folder")
    backup.add_argument("--verify", metavar="FILE", help="restore FILE into a temporary folder and check it (a drill)")
    backup.add_argument("--status", action="store_true", help="show the last backup and the archives kept")
    backup.add_argument(
        "--passphrase-stdin", action="store_true", help="read the encryption passphrase from standard input"
    )
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser("restore", help="replace the data with a backup (the server must be stopped)")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--as-new-machine", action="store_true", help="accept another appliance's backup (moving it to this machine)"
    )
    restore.add_argument("--passphrase-stdin", action="store_true", help="read the passphrase from standard input")
    restore.set_defaults(func=cmd_restore)
    commands.add_parser(
        "selftest", help="run known and hostile programs in every language through the sandbox"
    ).set_defaults(func=cmd_selftest)
    commands.add_parser(
        "identity", help="this appliance's id, key fingerprint and public key (for the central instance)"
    ).set_defaults(func=cmd_identity)
    appliances = commands.add_parser(
        "appliances", help="classroom appliances this central instance accepts bundles from"
    ).add_subparsers(dest="appliances_command", required=True)
    add = appliances.add_parser("add", help="register an appliance's public key under a name")
    add.add_argument("name", metavar="NAME")
    add.add_argument("public_key", metavar="PUBLIC-KEY", help="as `labrunner identity` prints it on the appliance")
    add.set_defaults(func=cmd_appliances_add)
    appliances.add_parser("list", help="registered appliances and their last import").set_defaults(
        func=cmd_appliances_list
    )
    export = commands.add_parser("export", help="write a signed sync bundle for the central instance")
    export.add_argument(
        "--since", type=int, default=0, metavar="WATERMARK", help="only what changed after this watermark (default 0)"
    )
    export.add_argument("file", metavar="FILE")
    export.set_defaults(func=cmd_export)
    import_ = commands.add_parser("import", help="import a classroom appliance's sync bundle (central instance)")
    import_.add_argument("file", metavar="FILE")
    import_.set_defaults(func=cmd_import)
    sync = commands.add_parser("sync", help="push what changed to the central instance (sync_central_url)")
    sync.add_argument(
        "--now", action="store_true", required=True, help="push once now, wait for the acknowledgement, print it"
    )
    sync.set_defaults(func=cmd_sync)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from appliance.errors import AppError
    from appliance.logs import configure_logging
    from appliance.migrations import MigrationError

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()  # every record one line: logged text cannot forge lines or drive the terminal
    overrides = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    try:
        settings = load_settings(environment=args.env, data_dir=args.data_dir, overrides=overrides)
        return int(args.func(settings, args))
    except (SettingsError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1
