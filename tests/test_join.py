"""How a class reaches the app (labcore.show.join): the network address, the Live page's URL for
the phones and its QR code, and where a page may use the camera."""
import io
import socket

import cv2
import numpy as np
import pytest
from PIL import Image

from labcore.show.join import PUBLIC_URL_ENV, SERVE_COMMAND, join_target, network_address, qr_png, secure_context


def decode_qr(png: bytes) -> str:
    """What a phone's camera reads from the code (OpenCV's QR detector)."""
    picture = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(picture)
    assert points is not None, "no QR code found"
    return text


def test_the_qr_code_decodes_to_the_live_url():
    url = "http://192.0.2.7:8501/live?experiment=demo-n96"
    assert decode_qr(qr_png(url)) == url


def test_the_network_address_is_one_of_this_machines_own():
    address = network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))  # binding succeeds only on an address this machine holds
    assert not address.startswith("127.")


def test_serving_on_every_interface_gives_the_network_address_and_the_experiment():
    assert join_target("", 8501, experiment="demo", network="192.0.2.7").url == \
        "http://192.0.2.7:8501/live?experiment=demo"
    assert join_target("0.0.0.0", 8650, base_path="/lab/", network="10.1.2.3").url == "http://10.1.2.3:8650/lab/live"
    assert join_target("192.0.2.9", 8501, network="10.1.2.3").url == "http://192.0.2.9:8501/live"  # bound to one
    assert join_target("::", 8501, network="fd00::2").url == "http://[fd00::2]:8501/live"


@pytest.mark.parametrize("listen", ["127.0.0.1", "localhost", "::1"])
def test_loopback_only_serving_gives_no_url_but_the_way_to_serve_the_class(listen):
    got = join_target(listen, 8501, network="192.0.2.7")
    assert got.url is None
    assert SERVE_COMMAND in got.problem and "\n" not in got.problem


def test_no_network_says_so_and_a_public_url_wins():
    assert join_target("", 8501, network=None).url is None
    assert "no network address" in join_target("", 8501, network=None).problem
    public = join_target("127.0.0.1", 8501, public_url="https://pets.example.org/lab/", experiment="demo")
    assert public.url == "https://pets.example.org/lab/live?experiment=demo"
    bad = join_target("", 8501, public_url="pets.example.org", network="192.0.2.7")
    assert bad.url is None and PUBLIC_URL_ENV in bad.problem


@pytest.mark.parametrize("url, peer, works", [
    ("http://localhost:8501/live", "127.0.0.1", True),
    ("http://127.0.0.1:8501/live", "127.0.0.1", True),
    ("http://[::1]:8501/live", "::1", True),
    ("https://192.0.2.7:8501/live", "192.0.2.30", True),  # a certificate: the camera works from any machine
    ("http://192.0.2.7:8501/live", "192.0.2.30", False),  # plain http from a phone
    ("http://192.0.2.7:8501/live", "127.0.0.1", False),  # the serving machine at its network address: not secure
    (None, "192.0.2.30", False),  # URL unknown: the peer decides
    (None, "127.0.0.1", True),
])
def test_the_camera_works_on_https_or_a_loopback_host_only(url, peer, works):
    assert secure_context(url, peer) is works
