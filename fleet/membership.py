"""What a hub accepts from an instance that registers itself: where it says it is (a URL that cannot
point the hub at itself, the cloud's metadata service or, by default, the private network), and a
lease secret that every later call of that membership must show."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

METADATA_HOSTS = {"metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}


class BadInstanceURL(ValueError):
    pass


def new_lease() -> str:
    return secrets.token_urlsafe(24)


def check_url(url: str, *, allow_private: bool) -> None:
    """Raises BadInstanceURL unless `url` is a plain http(s) URL whose host resolves only to addresses
    a hub may call: never link-local (169.254.0.0/16, where cloud metadata lives) or multicast, and no
    loopback or private range unless `allow_private` (a LAN fleet)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadInstanceURL("must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BadInstanceURL("must not carry a user or password")
    if parts.fragment or "#" in url:
        raise BadInstanceURL("must not have a #fragment")
    host = parts.hostname
    if not host:
        raise BadInstanceURL("has no host")
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise BadInstanceURL(f"points at a cloud metadata service ({host})")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError) as exc:
        raise BadInstanceURL(f"host {host} does not resolve ({exc})") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_link_local or ip.is_unspecified:  # before is_private, which includes both
            raise BadInstanceURL(f"resolves to {ip}, which a hub never calls")
        if ip.is_private or ip.is_loopback:
            if not allow_private:
                raise BadInstanceURL(f"resolves to the private address {ip}; start the hub with "
                                     "--hub-allow-private for a fleet on a private network")
        elif ip.is_multicast or ip.is_reserved:
            raise BadInstanceURL(f"resolves to {ip}, which a hub never calls")
