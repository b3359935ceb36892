"""Who may act on the store from the app (labcore.store.access): the presenter, the browser on
the serving machine reached directly; not a visitor, not anyone behind a forwarder or a page
that rebinds its name to this machine."""
import pytest

from labcore.store.access import host_name, is_presenter_request


@pytest.mark.parametrize("peer, headers, presenter", [
    ("127.0.0.1", {"Host": "localhost:8501"}, True),
    ("127.0.0.1", {"Host": "127.0.0.1:8501"}, True),
    ("::1", {"Host": "[::1]:8501"}, True),
    ("::ffff:127.0.0.1", {"host": "LOCALHOST"}, True),  # header names and host names in any case, no port
    ("192.168.1.20", {"Host": "localhost:8501"}, False),  # a visitor on the network
    (None, {"Host": "localhost:8501"}, False),  # a peer nobody knows
    ("127.0.0.1", {"Host": "localhost", "X-Forwarded-For": "203.0.113.7"}, False),  # nginx, ngrok, cloudflared
    ("127.0.0.1", {"Host": "localhost", "Forwarded": "for=203.0.113.7"}, False),
    ("127.0.0.1", {"Host": "localhost", "X-Real-IP": "203.0.113.7"}, False),
    ("127.0.0.1", {"Host": "localhost", "x-forwarded-for": ""}, False),  # even empty
    ("127.0.0.1", {"Host": "localhost", "Via": "1.1 proxy"}, False),
    ("127.0.0.1", {"Host": "abcd-12.ngrok-free.app"}, False),  # a tunnel passing on its public name
    ("127.0.0.1", {"Host": "rebound.example:8501"}, False),  # DNS rebinding: the page's own name
    ("127.0.0.1", {"Host": "localhost.rebound.example"}, False),
    ("127.0.0.1", {"Host": "127.0.0.1.nip.io"}, False),
    ("127.0.0.1", {"Host": "user@localhost"}, False),
    ("127.0.0.1", {"Host": "localhost:port"}, False),
    ("127.0.0.1", {}, False),  # no Host at all
])
def test_only_a_direct_browser_on_this_machine_is_the_presenter(peer, headers, presenter):
    assert is_presenter_request(peer, headers) is presenter


@pytest.mark.parametrize("host, name", [
    ("localhost:8501", "localhost"), ("[::1]:8501", "::1"), ("127.0.0.1", "127.0.0.1"), ("Example.ORG", "example.org"),
    ("::1", None), ("localhost:99999", None), ("a/b", None), ("", None), (None, None)])
def test_the_host_header_s_name(host, name):
    assert host_name(host) == name
