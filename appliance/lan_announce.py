"""The appliance announces itself on the LAN by zeroconf (multicast DNS, `_http._tcp`, named after
the room), so a laptop or phone lists it by name. The plain http://IP:port address is still printed
and shown, because tablets often cannot resolve `.local` names."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from zeroconf import Error as ZeroconfError
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from appliance import __version__
from appliance.lan import served_addresses
from appliance.settings import Settings

SERVICE_TYPE = "_http._tcp.local."


def room_name(settings: Settings) -> str:
    return settings.room_name or _host_label()


def _host_label() -> str:
    # A host name may hold dots (a domain) and other characters a DNS label may not.
    label = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0]).strip("-")
    return label[:63] or "labrunner"


class Announcement:
    """One service registered on the LAN; `close()` sends the goodbye, so browsers drop it at once."""

    def __init__(self, zeroconf: AsyncZeroconf, info: ServiceInfo) -> None:
        self._zeroconf = zeroconf
        self.info = info

    @property
    def name(self) -> str:
        """The name it got: another appliance announcing the same room makes it "Room 12 (2)"."""
        return self.info.name.removesuffix("." + SERVICE_TYPE)

    async def close(self) -> None:
        try:
            await (await self._zeroconf.async_unregister_service(self.info))
        finally:
            await self._zeroconf.async_close()


async def announce(settings: Settings) -> Announcement:
    """Register the service on every IPv4 address the server answers on; raises OSError or
    zeroconf's Error when the LAN does not allow it (no address, no multicast, port 5353 taken)."""
    addresses = [address for address in served_addresses(settings.host) if _is_ipv4(address)]
    if not addresses:
        raise OSError("the server listens on no IPv4 LAN address")
    zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
    try:
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{room_name(settings)}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(address) for address in addresses],
            port=settings.port,
            properties={"path": "/", "version": __version__},
            server=f"{_host_label()}.local.",
        )
        # Waiting for the probes (about a second) keeps the name unique before it is printed.
        await zeroconf.async_register_service(info, allow_name_change=True)
    except BaseException:
        await zeroconf.async_close()
        raise
    return Announcement(zeroconf, info)


async def start(settings: Settings, say: Callable[[str], None]) -> Announcement | None:
    """`announce` as the server starts it: an appliance the LAN cannot find by name still serves at
    its printed addresses, so a failure is said, never raised."""
    if not settings.lan_announce:
        return None
    try:
        announcement = await announce(settings)
    except (OSError, ZeroconfError) as exc:
        say(f"Not announced on the LAN by zeroconf ({exc}); the addresses above still work.")
        return None
    say(f"Announced on the LAN as {announcement.name!r} (zeroconf {SERVICE_TYPE.removesuffix('.local.')}).")
    return announcement


def _is_ipv4(address: str) -> bool:
    try:
        socket.inet_aton(address)
    except OSError:
        return False
    return address.count(".") == 3
