"""Who may act on the store from the app: the presenter, the browser on the serving machine.

A browser is the presenter when three things hold of its request (`is_presenter_request`):
- its peer is a loopback address (`inflight.is_loopback`): it connected from this machine;
- it carries no forwarding header (X-Forwarded-For, Forwarded, X-Real-IP and their kin): behind
  a forwarder on this machine (nginx, ngrok, cloudflared, a VS Code port) every visitor's peer
  is 127.0.0.1, and those forwarders say whom they forward;
- its Host header names this machine's loopback (localhost, 127.0.0.1 or [::1], any port): a
  page on another site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own
  name, and a forwarder that adds no header usually passes on the public name it was reached by.

A forwarder that adds no header and rewrites Host to localhost (`ssh -L`) is indistinguishable
from the presenter: whoever can open that tunnel can log in and run train.py anyway.
"""
from __future__ import annotations

from typing import Mapping
from urllib.parse import urlsplit

from labcore.store.inflight import is_loopback

# Headers a proxy or tunnel adds to say whom it forwards (lower case).
FORWARDING_HEADERS = frozenset({"forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via",
                                "cf-connecting-ip", "true-client-ip", "x-client-ip"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_presenter_request(peer: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a request from `peer` (the socket's address) with `headers` comes from a browser
    on this machine itself (see the module's docstring). Unknown peers and hosts are not."""
    names = {str(name).lower(): value for name, value in headers.items()}
    forwarded = bool(names.keys() & FORWARDING_HEADERS)
    return is_loopback(peer) and not forwarded and host_name(names.get("host")) in LOOPBACK_HOSTS


def host_name(host: str | None) -> str | None:
    """The name in a Host header, lower case, without its port ('[::1]:8501' -> '::1'); None
    where there is none or it is not a plain host[:port]."""
    if not host:
        return None
    try:
        parts = urlsplit(f"//{host}")
        parts.port  # raises ValueError where the port is not a number from 0 to 65535
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname
