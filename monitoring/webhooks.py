"""Webhook URLs and the one HTTP request a delivery makes, with SSRF defences.

A webhook URL is checked when registered and again at every delivery (DNS may change):
https only (http only to a loopback address with ``ALLOW_INSECURE_WEBHOOKS=1``), no
credentials or fragment, and every address the host resolves to must be public unless
``MONITORING_ALLOWED_NETWORKS`` lists its network (e.g. ``10.0.0.0/8,::1/128``). The
connection goes to the address that was checked (pinned), never to a second resolution;
TLS still verifies the certificate against the host name. Redirects are not followed,
timeouts are short and at most ``MAX_RESPONSE_BYTES`` of the answer are read.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from monitoring.errors import InvalidWebhook

MAX_URL_CHARS = 2000
MAX_RESPONSE_BYTES = 4096
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
SET_MEDIA_TYPE = "application/secevent+jwt"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked webhook: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str  # the name for TLS (SNI, certificate check) and the Host header
    address: str
    port: int
    path: str


def allowed_networks(
    config: Mapping[str, Any],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = config.get("MONITORING_ALLOWED_NETWORKS") or ""
    return [ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip()]


def insecure_allowed(config: Mapping[str, Any]) -> bool:
    return str(config.get("ALLOW_INSECURE_WEBHOOKS") or "") == "1"


def _address_allowed(address: IpAddress, config: Mapping[str, Any]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed_networks(config)):
        return True
    if address.is_loopback and insecure_allowed(config):
        return True
    return address.is_global and not address.is_multicast


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a syntactically acceptable webhook URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or not url.isascii():
        raise InvalidWebhook()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidWebhook()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhook() from None
    host = parts.hostname
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or "#" in url
    ):
        raise InvalidWebhook()
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidWebhook("The webhook's host name does not resolve.") from None
    # Scope ids ("fe80::1%eth0") are dropped by ip_address; link-local is refused anyway.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_target(url: str, config: Mapping[str, Any]) -> Target:
    """The URL checked and pinned to its first address; InvalidWebhook otherwise."""
    scheme, host, port, path = parse_url(url)
    addresses = resolve(host, port)
    if not addresses or not all(_address_allowed(a, config) for a in addresses):
        raise InvalidWebhook(
            "The webhook resolves to a private, loopback or link-local address; use a "
            "public address (or ask the operator to allow the network)."
        )
    if scheme == "http" and not (
        insecure_allowed(config) and all(a.is_loopback for a in addresses)
    ):
        raise InvalidWebhook("Use https:// (http:// is accepted for loopback test receivers only).")
    return Target(scheme, host, str(addresses[0]), port, path)


@dataclass(frozen=True)
class PushResult:
    outcome: str  # "accepted", "http_error", "timeout", "connection_failed"
    http_status: int | None = None


class Transport:
    """Keeps one connection pool per pinned target, so repeated pushes reuse connections."""

    def __init__(self) -> None:
        self._pools: dict[Target, urllib3.HTTPConnectionPool] = {}

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get(target)
        if pool is None:
            timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    target.address,
                    target.port,
                    timeout=timeout,
                    retries=False,
                    maxsize=1,
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED",
                )
            else:
                pool = urllib3.HTTPConnectionPool(
                    target.address, target.port, timeout=timeout, retries=False, maxsize=1
                )
            self._pools[target] = pool
        return pool

    def post(self, target: Target, body: bytes) -> PushResult:
        host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        try:
            response = self._pool(target).urlopen(
                "POST",
                target.path,
                body=body,
                headers={
                    "Host": host_header,
                    "Content-Type": SET_MEDIA_TYPE,
                    "Accept": "application/json",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.TimeoutError:
            return PushResult("timeout")
        except urllib3.exceptions.HTTPError:
            return PushResult("connection_failed")
        try:
            if len(response.read(MAX_RESPONSE_BYTES + 1)) > MAX_RESPONSE_BYTES:
                response.close()  # never read the rest: drop the connection instead
        except urllib3.exceptions.HTTPError:
            response.close()  # the status line decides; the body is informative only
        response.release_conn()
        if 200 <= response.status < 300:
            return PushResult("accepted", response.status)
        return PushResult("http_error", response.status)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
