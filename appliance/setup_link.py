"""`labrunner setup-link`: the first-start setup link (appliance.login_links) for a server that a
service manager runs, such as the Debian package's systemd unit, which has no window to open it in.

The token is made in the database exactly as the window makes it. The link's address is where the
server is reached over loopback, the only place the link is accepted: the running server's record
(with HTTPS on, its plain loopback port), else what the settings say it will listen on.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance import data_locks, login_links, migrations, server_record
from appliance.db import open_database
from appliance.errors import Invalid
from appliance.server_record import ServerRecord
from appliance.settings import Settings

_LOCAL_HOSTS = ("", "0.0.0.0", "::", "::1", "localhost")


@dataclass(frozen=True)
class SetupLink:
    url: str
    valid_s: int
    # False: the link works once the server is started (it is valid from now on all the same).
    server_running: bool


async def make(settings: Settings, *, only_if_needed: bool = False) -> SetupLink | None:
    """A fresh setup link while no teacher or admin exists. When one does: None with
    `only_if_needed` (an upgrade has nothing to set up), else Conflict `accounts_exist`."""
    try:
        record = server_record.running(settings.data_dir, settings.desktop_attach_wait_s)
    except TimeoutError:
        record = None  # a server still starting: the settings say where it will listen
    base = _loopback_base(settings, record)
    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        migrations.migrate(settings.database_location, settings.backup_dir)
    db = open_database(settings.database_location)
    await db.open()
    try:
        if only_if_needed and not await login_links.needs_setup(db):
            return None
        token = await login_links.create_setup_link(db, settings)
    finally:
        await db.close()
    return SetupLink(f"{base}/desktop/setup/{token}", settings.desktop_setup_link_s, record is not None)


def _loopback_base(settings: Settings, record: ServerRecord | None) -> str:
    if record is not None and record.window_port is not None:
        return record.local_url
    host, port = (record.host, record.port) if record is not None else (settings.host, settings.port)
    if host not in _LOCAL_HOSTS and not host.startswith("127."):
        raise Invalid(
            "host_not_local",
            f"the server listens on {host} only, where the one-time setup link is refused (it is accepted from"
            " 127.0.0.1 only): set host to 0.0.0.0 (every interface), or with tls on make the link while the server"
            " runs (it then has a loopback port too)",
        )
    base = server_record.local_url(host, port)
    # A running server without a loopback window port serves plain HTTP; one yet to start, as its settings say.
    if record is None and settings.tls != "off":
        return "https" + base.removeprefix("http")
    return base
