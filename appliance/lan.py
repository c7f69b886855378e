"""The machine's LAN addresses: what students type to reach the appliance (the CLI prints them at
start-up, the teacher's pages show them)."""

from __future__ import annotations

import socket
import struct

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
# Container bridges and their veths are unreachable from the classroom's LAN.
_VIRTUAL_INTERFACES = ("docker", "br-", "veth", "virbr", "lo")


_EVERY_INTERFACE = ("0.0.0.0", "")


def served_addresses(host: str) -> list[str]:
    """The IPv4 addresses a server listening on `host` answers other machines on: every LAN address for
    0.0.0.0, else the one address it was given (127.0.0.1: this machine only)."""
    return lan_addresses() if host in _EVERY_INTERFACE else [host]


def lan_addresses() -> list[str]:
    """IPv4 addresses students can type; shown beside any name since tablets often cannot resolve names."""
    found: list[str] = []
    for address in [*_interface_addresses(), *_resolved_addresses()]:
        if not address.startswith("127.") and address not in found:
            found.append(address)
    return found


def _interface_addresses() -> list[str]:
    """Each network interface's IPv4 address (Linux: SIOCGIFADDR), without asking any resolver."""
    try:
        import fcntl
    except ImportError:  # not on Windows
        return []
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name.startswith(_VIRTUAL_INTERFACES):
                continue
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue  # an interface without an IPv4 address
            found.append(socket.inet_ntoa(reply[20:24]))
    return found


def _resolved_addresses() -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        return []
