"""Which URLs a webhook may post to: http(s) only, and no private, loopback or link-local
address unless SIYU_WEBHOOKS_ALLOW_PRIVATE is on, so a subscription cannot be used to reach
the machines behind the firewall (the database, the cloud metadata service)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from siyu.core.errors import DomainError

MAX_URL = 500


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def host_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to; raises DomainError when it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DomainError(f"the host {host!r} cannot be resolved", field="url") from None
    return sorted({info[4][0] for info in infos})


def check_url(url: str, *, resolve: bool = True) -> str:
    """The cleaned URL; raises DomainError naming why it is refused."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL:
        raise DomainError(f"give a URL of at most {MAX_URL} characters", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError(
            "the URL must start with http:// or https:// and name a host", field="url"
        )
    if parts.username or parts.password:
        raise DomainError("put no user name or password in the URL", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DomainError("the URL's port is not a number", field="url") from None
    if resolve and not settings.SIYU_WEBHOOKS_ALLOW_PRIVATE:
        check_host(parts.hostname, port)
    return url


def check_host(host: str, port: int) -> None:
    """Raises DomainError when `host` is or resolves to a non-public address."""
    if settings.SIYU_WEBHOOKS_ALLOW_PRIVATE:
        return
    for address in host_addresses(host, port):
        if _blocked(address):
            raise DomainError(
                f"{host} is a private, loopback or link-local address ({address}); "
                "webhooks go to public addresses only",
                field="url",
            )
