"""Which hosts the server may send webhooks to.

The allow-list (``--webhook-allow`` / ``TAPESCOPE_WEBHOOK_ALLOW``, comma-separated) holds
host names, IP addresses and CIDR networks; ``*`` admits any host whose every resolved
address is public. Loopback, private, link-local, multicast and reserved addresses are
refused unless the host, its address or a network holding it is listed. The check runs
when a rule is written and again before each request (a name may resolve elsewhere later).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ANY_PUBLIC = "*"


class WebhookPolicy:
    """The allow-list (see the module docstring)."""

    def __init__(self, allow: tuple[str, ...] = (ANY_PUBLIC,)) -> None:
        self.any_public = ANY_PUBLIC in allow
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip() for e in allow):
            if not entry or entry == ANY_PUBLIC:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    def _listed(self, address: IpAddress) -> bool:
        return any(address in net for net in self._networks)

    def check(self, url: str) -> None:
        """Return when ``url`` may be called; ``ValueError`` saying why not otherwise."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError("must be an http or https URL")
        if host in self._hosts:
            return
        try:
            infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise ValueError(f"host {host} cannot be resolved") from None
        addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
        for address in addresses:
            if self._listed(address):
                continue
            if not self.any_public:
                raise ValueError(f"host {host} is not on the webhook allow-list")
            if not address.is_global or address.is_multicast:
                raise ValueError(
                    f"host {host} resolves to a non-public address ({address}); "
                    "add it to the webhook allow-list to permit it"
                )
