"""`labrunner` command line (DESIGN.md §7); `python -m appliance` is the same program."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from appliance import migrations, server_record
from appliance.db import open_database
from appliance.lan import lan_addresses
from appliance.settings import ENVIRONMENTS, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from appliance.db import Database
    from appliance.problem_sets import Published
    from appliance.sandbox_transfer import Transferred
    from appliance.sync_export import Exported


def _urls(settings: Settings) -> list[str]:
    if settings.host in ("0.0.0.0", ""):
        hosts = [*lan_addresses(), "127.0.0.1"]
    else:
        hosts = [settings.host]
    scheme = "http" if settings.tls == "off" else "https"
    return [f"{scheme}://{host}:{settings.port}/" for host in hosts]


async def _serve(settings: Settings) -> None:
    from appliance import central_client, lan_announce, private_files
    from appliance.app_keys import TLS
    from appliance.listeners import listen
    from appliance.runtime import create_app
    from appliance.systemd_notify import ready

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    window_port = await listen(runner, settings, app[TLS])
    # Where this server listens, for `labrunner desktop` to attach to (removed at a clean stop).
    server_record.write(settings.data_dir, settings.host, settings.port, window_port)
    print("Labrunner is running. Students open:", flush=True)
    for url in _urls(settings):
        print(f"  {url}", flush=True)
    certificate = app[TLS]
    if certificate is not None:
        print(f"Certificate fingerprint (SHA-256): {certificate.fingerprint}", flush=True)
    print(f"Data folder: {settings.data_dir}  (environment: {settings.environment})", flush=True)
    plain = central_client.plain_http_warning(settings)
    for warning in [*private_files.warnings(settings, certificate), *([plain] if plain else [])]:
        print(f"Warning: {warning}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (service managers, `kill`) and Ctrl-C both shut down in order: stop taking
    # requests, stop the workers (their sandboxes are removed), close the database.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ready()  # to systemd (Type=notify), once a stop it sends is handled too
    announcement = None
    try:
        announcement = await lan_announce.start(settings, lambda line: print(line, flush=True))
        await stop.wait()
    finally:
        print("Labrunner is stopping…", flush=True)
        if announcement is not None:
            await announcement.close()
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
        for state in migrations.status(settings.database_location):
            mark = f"applied {state.applied_at}" if state.applied_at else "pending"
            print(f"{state.migration.version:04d}_{state.migration.name}: {mark}")
        return 0
    from appliance import data_locks

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        applied = migrations.migrate(settings.database_location, settings.backup_dir)
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        print("database is up to date")
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    from appliance.accounts import Accounts

    migrations.migrate(settings.database_location, settings.backup_dir)
    db = open_database(settings.database_location)
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


def _print_transfer(verb: str, result: Transferred) -> None:
    print(f"{verb}: {result.ref} (image {result.image_id})")
    print("run `labrunner selftest` to check it")


def cmd_sandbox_export(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.sandbox_transfer import export

    target = Path(args.file)
    result = export(settings, target, lambda line: print(line, flush=True))
    print(f"image file written: {target} ({result.size} bytes, sha256 {result.sha256}) holding {result.ref}")
    return 0


def cmd_sandbox_load(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.sandbox_transfer import load

    _print_transfer("sandbox image ready", load(settings, Path(args.file), lambda line: print(line, flush=True)))
    return 0


def cmd_sandbox_pull(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.sandbox_transfer import pull

    _print_transfer("sandbox image ready", pull(settings, lambda line: print(line, flush=True)))
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

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        migrations.migrate(settings.database_location, settings.backup_dir)
    db = open_database(settings.database_location)
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

    migrations.status(settings.database_location)
    db = open_database(settings.database_location)
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
    if result.replaced_schema is not None:
        print(
            f"the database rows it replaced are kept in schema {result.replaced_schema}"
            f" (DROP SCHEMA {result.replaced_schema} CASCADE once they are no longer needed)"
        )
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
    print("register it on the central instance with:")
    print(f"  labrunner appliances add NAME {me.public_key_text} --appliance-id {me.appliance_id}")
    print("or, for a runner host (`labrunner worker`), on the server with:")
    print(f"  labrunner workers add NAME {me.public_key_text}")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

    from appliance import worker_host

    host = worker_host.host_settings(settings, args.name, args.region, args.slots)
    runner_host, sandbox = worker_host.build(settings, args.connect, args.server_key, host)
    try:
        asyncio.run(worker_host.serve(runner_host, sandbox))
    except AuthenticationError:
        print("error (broker_auth_refused): the broker refused this host's user name or password", file=sys.stderr)
        return 1
    except NoPermissionError as error:
        print(
            f"error (broker_permission_denied): the broker denied this host a command or key ({error}); give it"
            " the access-list line `labrunner workers add` printed",
            file=sys.stderr,
        )
        return 1
    except (RedisError, OSError) as error:
        print(f"error (broker_unavailable): cannot reach the broker: {error}", file=sys.stderr)
        return 1
    return 0


async def _workers(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import identity, runner_hosts

    async with _database(settings) as db:
        if args.workers_command == "add":
            added = await runner_hosts.register(db, args.name, args.public_key)
            print(f"registered runner host {added['name']!r} (fingerprint {added['fingerprint']})")
            print("its own broker user, for Redis's ACL file (it reaches only this host's jobs):")
            print(f"  {added['acl_rule']}")
            server_key = identity.ensure(settings.data_dir).public_key_text
            print("and on the host (BROKER: the broker's address):")
            print(
                f"  labrunner worker --connect redis://{added['name']}:{added['broker_password']}@BROKER:6379/0"
                f" --server-key {server_key} --name {added['name']}"
            )
        elif args.workers_command == "remove":
            await runner_hosts.remove(db, args.name)
            print(f"runner host {args.name!r} removed: it gets no more jobs")
            print(f"remove its user from the broker too: `ACL DELUSER {args.name}` (and its line in the ACL file)")
        else:
            rows = await runner_hosts.listing(db)
            for row in rows:
                print(f"{row['name']}  {row['fingerprint']}  since {row['added_at']}  jobs run: {row['jobs_run']}")
            if not rows:
                print("no runner hosts registered")
    return 0


def cmd_workers(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_workers(settings, args))


async def _regions(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import runner_hosts

    async with _database(settings) as db:
        await runner_hosts.prefer_region(db, class_id=args.class_id, username=args.user, region=args.region)
    whose = f"class {args.class_id}" if args.class_id is not None else f"user {args.user!r}"
    print(f"{whose} now prefers {args.region!r}" if args.region else f"{whose} prefers no region")
    return 0


def cmd_regions(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_regions(settings, args))


def cmd_tls(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import private_files, tls

    served = tls.load(settings)
    if served is None:
        print("TLS is off: the appliance serves plain HTTP (set tls = self-signed or files to serve HTTPS)")
        return 0
    print(f"mode:         {served.mode}")
    print(f"certificate:  {served.cert_file}")
    print(f"valid until:  {served.not_after:%Y-%m-%d}")
    print(f"names:        {', '.join(served.names)}")
    print(f"fingerprint:  {served.fingerprint}")
    print(f"short:        {served.short_fingerprint}")
    for warning in private_files.key_warnings(served):
        print(f"warning:      {warning}")
    return 0


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The migrated database, open, for one command."""
    from appliance import data_locks

    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        migrations.migrate(settings.database_location, settings.backup_dir)
    db = open_database(settings.database_location)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def _appliances_add(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.sync_appliances import register

    async with _database(settings) as db:
        added = await register(db, args.name, args.public_key, args.appliance_id)
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


def _write_bundle(target: Path, data: bytes) -> None:
    from appliance.atomic_files import replace_with

    # Under FILE.partial first: a full disk or a crash never leaves half a bundle under the name.
    replace_with(target, data, suffix=".partial")


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    result = asyncio.run(_export(settings, args.since))
    target = Path(args.file)
    _write_bundle(target, result.data)
    counts = ", ".join(f"{n} {what}" for what, n in result.counts.items())
    print(
        f"bundle written: {target} (generation {result.generation}, since {result.since},"
        f" watermark {result.watermark}: {counts})"
    )
    return 0


async def _import(settings: Settings, raw: bytes) -> str:
    from appliance import problem_sets, sync_bundle
    from appliance.blobs import BlobStore
    from appliance.sync_import import describe, import_bundle

    # A problem set goes into this classroom's inbox; a classroom bundle into the central view.
    kind = sync_bundle.read(raw, settings.sync_bundle_max_bytes).kind
    async with _database(settings) as db:
        if kind == problem_sets.KIND:
            return problem_sets.describe(await problem_sets.receive(db, BlobStore(settings.blob_dir), settings, raw))
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


async def _sync_status(settings: Settings) -> list[str]:
    from appliance import sync_status

    async with _database(settings) as db:
        return sync_status.describe(await sync_status.status(db, settings))


async def _fetch_now(settings: Settings) -> dict[str, object]:
    from appliance import job_history
    from appliance.blobs import BlobStore
    from appliance.problem_sets_fetch import JOB_NAME, fetch

    async with _database(settings) as db, job_history.recorded(db, JOB_NAME, "cli") as run:
        result = await fetch(db, BlobStore(settings.blob_dir), settings)
        run.detail.update(result)
        return result


def _print_push(result: dict[str, object]) -> None:
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


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    """The push, then the fetch of offered problem sets: each runs (and is recorded) even if the
    other failed, since a refused push says nothing about the sets and the other way round."""
    from appliance.errors import AppError
    from appliance.problem_sets_fetch import describe

    if args.status:
        print("\n".join(asyncio.run(_sync_status(settings))))
        return 0
    failed = False
    try:
        _print_push(asyncio.run(_sync_now(settings)))
    except AppError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        if exc.code == "sync_not_configured":
            return 1
        failed = True
    try:
        print(describe(asyncio.run(_fetch_now(settings))))
    except AppError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


async def _publish(settings: Settings, name: str, problem_ids: list[int]) -> Published:
    from appliance import identity, problem_sets
    from appliance.blobs import BlobStore

    me = identity.ensure(settings.data_dir)
    async with _database(settings) as db:
        return await problem_sets.publish(db, BlobStore(settings.blob_dir), settings, me, name, problem_ids)


async def _publications(settings: Settings) -> list[dict[str, Any]]:
    from appliance import problem_sets

    async with _database(settings) as db:
        return await problem_sets.publications(db)


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.errors import Invalid

    if args.list:
        rows = asyncio.run(_publications(settings))
        for row in rows:
            ids = " ".join(str(i) for i in row["problem_ids"])
            print(
                f"{row['name']}  version {row['version']}  set {row['set_id']}  problems {ids}"
                f"  sha256 {row['sha256'][:16]}  {row['size']} bytes  published {row['published_at']}"
            )
        if not rows:
            print("nothing published yet")
        return 0
    if not args.name or not args.problem_ids:
        raise Invalid("no_problems_chosen", "publish needs --name NAME and at least one PROBLEM_ID (or --list)")
    result = asyncio.run(_publish(settings, args.name, args.problem_ids))
    if args.out:
        _write_bundle(Path(args.out), result.data)
    print(
        f"published {result.name!r} version {result.version} (set {result.set_id}, {len(result.titles)} problems,"
        f" sha256 {result.sha256[:16]})" + (f"; bundle written: {args.out}" if args.out else "")
    )
    return 0


async def _publishers(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import problem_sets_trust

    async with _database(settings) as db:
        if args.publishers_command == "add":
            added = await problem_sets_trust.add(db, args.name, args.public_key)
            print(f"trusting publisher {added['name']!r} (fingerprint {added['fingerprint']})")
        elif args.publishers_command == "remove":
            await problem_sets_trust.remove(db, args.name)
            print(f"no longer trusting publisher {args.name!r}; its problem sets left the inbox")
        else:
            rows = await problem_sets_trust.listing(db)
            for row in rows:
                print(f"{row['name']}  {row['fingerprint']}  since {row['added_at']}  sets in the inbox: {row['sets']}")
            if not rows:
                print("no publishers trusted: this appliance accepts no problem sets")
    return 0


def cmd_publishers(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_publishers(settings, args))


async def _promote(settings: Settings, args: argparse.Namespace, target_dir: Path, command: str) -> str:
    from appliance import identity, promote
    from appliance.blobs import BlobStore

    me = identity.ensure(settings.data_dir)
    # Production's own settings (its config.toml), not this shell's LABRUNNER_* variables, which are staging's.
    production = load_settings(environment="production", data_dir=target_dir, environ={})
    async with _database(settings) as db, _database(production) as target_db:
        target = promote.Target(production, target_db, BlobStore(production.blob_dir), command)
        owner = await promote.check_target(target, me, args.owner, args.class_ids)
        published = await promote.bundle(db, BlobStore(settings.blob_dir), settings, me, args.problem_ids)
        results = await promote.into_production(
            target, owner, published.data, args.problem_ids, args.class_ids, replace=args.replace
        )
    return promote.describe(results, target_dir)


async def _promote_out(settings: Settings, problem_ids: list[int]) -> Published:
    from appliance import identity, promote
    from appliance.blobs import BlobStore

    me = identity.ensure(settings.data_dir)
    async with _database(settings) as db:
        return await promote.bundle(db, BlobStore(settings.blob_dir), settings, me, problem_ids)


def cmd_promote(settings: Settings, args: argparse.Namespace) -> int:

    from appliance.errors import Invalid, NotFound
    from appliance.settings import default_data_dir

    if args.out:
        published = asyncio.run(_promote_out(settings, args.problem_ids))
        target = Path(args.out)
        _write_bundle(target, published.data)
        print(
            f"bundle written: {target} (problem set {published.name!r} version {published.version}, signed by this"
            f" appliance); on production: `labrunner import {target.name}`, then a teacher imports it at"
            " /teach/problem-sets"
        )
        return 0
    if not args.owner:
        raise Invalid("promote_owner_required", "name the production teacher who will own the problems: --owner NAME")
    target_dir = Path(args.to_data_dir or default_data_dir("production")).expanduser().resolve()
    command = "labrunner --env production" + (f" --data-dir {target_dir}" if args.to_data_dir else "")
    if target_dir == settings.data_dir:
        raise Invalid(
            "promote_same_appliance", f"{target_dir} is this appliance's own data folder", field="to_data_dir"
        )
    if not (target_dir / "labrunner.sqlite3").is_file():
        raise NotFound(
            "promote_no_production",
            f"there is no production appliance in {target_dir}: start it once (`{command} serve`) or name its data"
            " folder with --to-data-dir",
            field="to_data_dir",
        )
    print(asyncio.run(_promote(settings, args, target_dir, command)))
    return 0


def cmd_setup_link(settings: Settings, args: argparse.Namespace) -> int:
    from appliance import setup_link

    link = asyncio.run(setup_link.make(settings, only_if_needed=args.if_needed))
    if link is None:
        return 0
    print("No teacher or admin exists yet. To create the first admin and teacher, open this one-time link")
    print(f"in a browser on this machine (it works only from 127.0.0.1, once, for {link.valid_s // 60} minutes):")
    print(f"  {link.url}")
    if not link.server_running:
        print("The server is not running yet: the link works once it runs.")
    port = urlsplit(link.url).port
    print(f"From another computer: ssh -L {port}:127.0.0.1:{port} THIS-MACHINE, then open the link there.")
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
    sandbox_export = sandbox.add_parser("export", help="write the sandbox image into FILE (for `sandbox load`)")
    sandbox_export.add_argument("file", metavar="FILE")
    sandbox_export.set_defaults(func=cmd_sandbox_export)
    sandbox_load = sandbox.add_parser(
        "load", help="load the sandbox image from FILE, if it was made for this Labrunner's recipe"
    )
    sandbox_load.add_argument("file", metavar="FILE")
    sandbox_load.set_defaults(func=cmd_sandbox_load)
    sandbox.add_parser(
        "pull", help="fetch the sandbox image by its content tag from the image_registry setting"
    ).set_defaults(func=cmd_sandbox_pull)
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
    setup = commands.add_parser(
        "setup-link",
        help="print a one-time link (from this machine only) that creates the first admin and teacher",
    )
    setup.add_argument("--if-needed", action="store_true", help="print nothing when a teacher or admin exists already")
    setup.set_defaults(func=cmd_setup_link)
    commands.add_parser(
        "selftest", help="run known and hostile programs in every language through the sandbox"
    ).set_defaults(func=cmd_selftest)
    commands.add_parser(
        "identity", help="this appliance's id, key fingerprint and public key (for the central instance)"
    ).set_defaults(func=cmd_identity)
    commands.add_parser(
        "tls", help="the HTTPS certificate this appliance serves and its SHA-256 fingerprint (made when missing)"
    ).set_defaults(func=cmd_tls)
    worker = commands.add_parser(
        "worker", help="run jobs for a server as a runner host (the server has runner_mode = remote)"
    )
    worker.add_argument(
        "--connect", required=True, metavar="URL", help="the broker: redis://USER:PASSWORD@HOST:PORT/DB"
    )
    worker.add_argument(
        "--server-key", required=True, metavar="KEY", help="the server's public key (`labrunner identity` there)"
    )
    worker.add_argument("--name", help="this host's name, as registered on the server (default: the host name)")
    worker.add_argument("--region", help="the region this host is in (default: setting worker_region)")
    worker.add_argument("--slots", type=int, help="jobs run at once (default: setting worker_slots)")
    worker.set_defaults(func=cmd_worker)
    workers = commands.add_parser("workers", help="runner hosts this server gives jobs to").add_subparsers(
        dest="workers_command", required=True
    )
    add_host = workers.add_parser("add", help="register a runner host's public key under the name it declares")
    add_host.add_argument("name")
    add_host.add_argument("public_key", metavar="PUBLIC-KEY")
    add_host.set_defaults(func=cmd_workers)
    workers.add_parser("list", help="registered runner hosts").set_defaults(func=cmd_workers)
    remove_host = workers.add_parser("remove", help="stop giving a runner host jobs")
    remove_host.add_argument("name")
    remove_host.set_defaults(func=cmd_workers)
    regions = commands.add_parser("regions", help="the runner-host region a class or a user prefers")
    whose = regions.add_mutually_exclusive_group(required=True)
    whose.add_argument("--class", dest="class_id", type=int, metavar="ID")
    whose.add_argument("--user", metavar="USERNAME")
    regions.add_argument("region", help="a region name; an empty string for none")
    regions.set_defaults(class_id=None, func=cmd_regions)
    appliances = commands.add_parser(
        "appliances", help="classroom appliances this central instance accepts bundles from"
    ).add_subparsers(dest="appliances_command", required=True)
    add = appliances.add_parser("add", help="register an appliance's public key under a name")
    add.add_argument("name", metavar="NAME")
    add.add_argument("public_key", metavar="PUBLIC-KEY", help="as `labrunner identity` prints it on the appliance")
    add.add_argument(
        "--appliance-id",
        metavar="ID",
        help="the appliance's id, as `labrunner identity` prints it: only bundles naming it are taken with this key"
        " (without it the first import pins the id its bundle names)",
    )
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
    import_ = commands.add_parser(
        "import",
        help="import a sync bundle: a classroom's (central instance) or a problem set (into this classroom's inbox)",
    )
    import_.add_argument("file", metavar="FILE")
    import_.set_defaults(func=cmd_import)
    sync = commands.add_parser(
        "sync", help="push what changed to the central instance (sync_central_url) and fetch its problem sets"
    )
    sync_what = sync.add_mutually_exclusive_group(required=True)
    sync_what.add_argument(
        "--now",
        action="store_true",
        help="push once now, wait for the acknowledgement, print it; then fetch offered problem sets",
    )
    sync_what.add_argument(
        "--status", action="store_true", help="this appliance's id and fingerprint, the central, the last push"
    )
    sync.set_defaults(func=cmd_sync)
    publish = commands.add_parser(
        "publish", help="sign chosen problems as a problem set classrooms trusting this appliance can import"
    )
    publish.add_argument("--name", help="the set's name; publishing a name again makes its next version")
    publish.add_argument("problem_ids", type=int, nargs="*", metavar="PROBLEM_ID")
    publish.add_argument("--out", metavar="FILE", help="also write the signed bundle to FILE (for a USB stick)")
    publish.add_argument("--list", action="store_true", help="list what was published")
    publish.set_defaults(func=cmd_publish)
    publishers = commands.add_parser(
        "publishers", help="publisher keys this classroom accepts problem sets from"
    ).add_subparsers(dest="publishers_command", required=True)
    trust = publishers.add_parser("add", help="trust a publisher's public key under a name")
    trust.add_argument("name", metavar="NAME")
    trust.add_argument("public_key", metavar="PUBLIC-KEY", help="as `labrunner identity` prints it on the publisher")
    trust.set_defaults(func=cmd_publishers)
    publishers.add_parser("list", help="trusted publishers with their fingerprints").set_defaults(func=cmd_publishers)
    untrust = publishers.add_parser("remove", help="stop trusting a publisher (its sets leave the inbox)")
    untrust.add_argument("name", metavar="NAME")
    untrust.set_defaults(func=cmd_publishers)

    promote = commands.add_parser(
        "promote", help="copy chosen problems (hidden tests too) from this staging appliance to production"
    )
    promote.add_argument("problem_ids", type=int, nargs="+", metavar="PROBLEM_ID", help="this appliance's problem ids")
    promote.add_argument("--owner", help="the production teacher (username) who will own the problems")
    promote.add_argument(
        "--class",
        dest="class_ids",
        type=int,
        action="append",
        default=[],
        metavar="CLASS_ID",
        help="a production class of the owner's to set the problems in (repeatable)",
    )
    promote.add_argument("--to-data-dir", help="production's data folder (default: production's usual folder)")
    promote.add_argument("--replace", action="store_true", help="overwrite production copies edited there since")
    promote.add_argument(
        "--out", metavar="FILE", help="only write the signed bundle to FILE (to carry to production on a USB stick)"
    )
    promote.set_defaults(func=cmd_promote)

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
