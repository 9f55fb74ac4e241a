"""HTTP requests the farm makes to URLs its clients gave (webhooks, slate images).

Sent to the address that was checked (resolved once, connected to by address: a name that
resolves elsewhere the second time changes nothing), never redirected (a 3xx is the answer),
through no proxy. Link-local addresses — a cloud's metadata service — are never reached, nor
multicast, unspecified or reserved ones; loopback and private ones (the node itself, its
PostgreSQL and Redis, the operator's internal network) only where the operator allows them
(STREAMFLEET_OUTBOUND_PRIVATE).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class Refused(Exception):
    """Not sent: the address is not one the farm sends to (or the URL is not http(s))."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes  # its start, at most what was asked


def address_of(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to for `host`, if every one it resolves to may be reached."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError as error:
        raise Refused(f"cannot resolve {host}: {error}") from None
    for address in sorted(found):
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise Refused(f"{host} is a link-local, multicast or reserved address ({ip})")
        if not allow_private and (ip.is_loopback or ip.is_private):
            raise Refused(
                f"{host} is a loopback or private address ({ip}); "
                "STREAMFLEET_OUTBOUND_PRIVATE=true allows them"
            )
    return str(sorted(found)[0])


class _PinnedHttps(http.client.HTTPSConnection):
    """HTTPS to `address`, its certificate checked against the URL's host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float,
    read_at_most: int,
    allow_private: bool,
) -> Reply:
    """Send it as said above; raises Refused, or OSError when the connection fails."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    address = address_of(parts.hostname, port, allow_private=allow_private)
    connection: http.client.HTTPConnection = (
        _PinnedHttps(parts.hostname, address, port, timeout_s)
        if secure
        else http.client.HTTPConnection(address, port, timeout=timeout_s)
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            method, path, body=body, headers={"Host": parts.netloc, **(headers or {})}
        )
        answer = connection.getresponse()
        return Reply(answer.status, answer.read(read_at_most))
    finally:
        connection.close()
