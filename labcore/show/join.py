"""How a class reaches the app: this machine's network address, the Live page's URL for the phones
(as a QR code), and whether a browser's page may use the camera.

The address is found as Streamlit finds its "Network URL": a UDP socket "connected" to a public
address, which sends no packet, tells which of this machine's addresses the kernel would send
from. A tunnel or a cloud host has a public URL of its own, which no socket can see: it is given
with $PETLAB_PUBLIC_URL (or `streamlit run app.py -- --public-url URL`).
"""
from __future__ import annotations

import io
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from labcore.store.inflight import is_loopback

PUBLIC_URL_ENV = "PETLAB_PUBLIC_URL"
LIVE_PATH = "live"
ALL_INTERFACES = ("", "0.0.0.0", "::")
SERVE_COMMAND = "streamlit run app.py --server.address 0.0.0.0"
_ROUTE_PROBE = ("8.8.8.8", 1)  # any public address: connect() on a UDP socket only picks a route


def network_address() -> str | None:
    """This machine's IPv4 address on its network, or None where it has none (no route out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_ROUTE_PROBE)
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if is_loopback(address) or address in ALL_INTERFACES else address


def listens_on_loopback_only(address: str | None) -> bool:
    """Whether a server bound to `address` (Streamlit's server.address) is reachable from this machine only."""
    return (address or "").strip().lower() in ("localhost", "ip6-localhost") or is_loopback(address)


@dataclass(frozen=True)
class Join:
    """The Live page's address for the class, or the one line that says why there is none."""
    url: str | None
    problem: str | None = None


def join_target(listen: str | None, port: int, *, base_path: str = "", public_url: str | None = None,
                experiment: str | None = None, network: str | None = None) -> Join:
    """Where the phones open the Live page (of `experiment`, so they add to the board the
    projector shows): the public URL where one is set, else this machine's `network` address
    (None: none found) on the port the server listens on. A server bound to loopback only gets
    no URL but the way to serve the class."""
    query = f"?{urlencode({'experiment': experiment})}" if experiment else ""
    if public_url:
        base = public_url.strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
            return Join(None, f"{PUBLIC_URL_ENV} is not a web address ({public_url!r}): give it as "
                              "https://host[:port][/path], the address the class opens.")
        return Join(f"{base}/{LIVE_PATH}{query}")
    if listens_on_loopback_only(listen):
        return Join(None, f"This server listens on {listen} only, which no phone can reach: restart it with "
                          f"`{SERVE_COMMAND}` (or set {PUBLIC_URL_ENV} for a tunnel).")
    host = listen if (listen or "") not in ALL_INTERFACES else network
    if not host:
        return Join(None, "This machine has no network address: connect it to the class's network (or a phone's "
                          f"hotspot), then reload this page; or set {PUBLIC_URL_ENV} for a tunnel.")
    if ":" in host:
        host = f"[{host}]"
    path = "/".join(p for p in (base_path.strip("/"), LIVE_PATH) if p)
    return Join(f"http://{host}:{port}/{path}{query}")


def qr_png(url: str, scale: int = 10) -> bytes:
    """The URL as a QR code (PNG, black on white, with the quiet zone a reader needs)."""
    import segno

    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def secure_context(url: str | None, peer: str | None) -> bool:
    """Whether a page at `url` (the address in the browser) is a secure context, where a browser
    lets a page use the camera: https, or a loopback host (localhost, 127.x, [::1]). Where the
    URL is unknown, a browser on this machine (a loopback `peer`) counts as localhost and any
    other as plain http; with neither known (no browser, as in Streamlit's AppTest) the control
    is kept."""
    if url:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return True
        host = (parts.hostname or "").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True if peer is None else is_loopback(peer)
