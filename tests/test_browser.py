"""The real app, served by `streamlit run`, driven in headless Chromium (Debian's, via Playwright).

Skips, saying why, where Chromium or Playwright is missing; CI installs both.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from labcore.settings import BREEDS, breed_name
from labcore.sources import draw_pet

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")

PAGES = {"": "Transfer learning on Oxford-IIIT Pet", "histories": "Training histories", "compare": "Compare predictions",
         "live": "Live inference", "dataset": "Dataset", "breeds": "Per-breed results"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(two_experiments):
    port = free_port()
    env = {**os.environ, "PETLAB_RUNS_DIR": str(two_experiments)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (proc.stdout.read() if proc.stdout else ""))
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(120_000)
        yield tab
        browser.close()


def wait_until_idle(page) -> None:
    """Until the page's script has finished its run (Streamlit marks the app root)."""
    page.wait_for_timeout(500)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=180_000)


def assert_no_error(page) -> None:
    body = page.inner_text("body")
    assert "Traceback" not in body
    assert page.locator("[data-testid='stException']").count() == 0


def test_every_page_renders(page, server):
    for path, title in PAGES.items():
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for()
        wait_until_idle(page)
        assert_no_error(page)


def upload_drawn_pet(page, url: str, photo: Path, label: int, seed: int) -> None:
    """Open the live page at `url`, upload a drawn pet saved as `photo`, wait for every answer."""
    image, _, _ = draw_pet(label, np.random.default_rng(seed), size=200)
    Image.fromarray(image).save(photo)
    page.goto(url)
    page.get_by_role("heading", name="Live inference").wait_for()
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_text(photo.name).first.wait_for()
    wait_until_idle(page)


def test_upload_a_photo_and_see_a_breed(page, server, tmp_path):
    upload_drawn_pet(page, f"{server}/live", tmp_path / "my_cat.jpg", label=5, seed=1)
    body = page.inner_text("body")
    assert any(breed_name(i) in body for i in range(len(BREEDS)))
    assert " ms" in body  # time per model
    assert_no_error(page)


def test_upload_a_broken_file_and_see_the_message(page, server, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg at all")
    page.goto(f"{server}/live")
    page.get_by_role("heading", name="Live inference").wait_for()
    page.locator("input[type=file]").set_input_files(str(broken))
    page.get_by_text("is not an image this app can read").wait_for()
    assert_no_error(page)


def test_switching_experiments_in_the_sidebar_changes_every_page(page, server):
    page.goto(f"{server}/?experiment=demo")
    page.get_by_text("Experiment demo:").first.wait_for()
    wait_until_idle(page)
    assert "Not comparable" in page.inner_text("body")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="photos").click()
    page.get_by_text("Experiment photos:").first.wait_for()
    wait_until_idle(page)
    assert "photos" in page.url  # the address keeps the choice, so a link opens the same experiment
    for path, expect in (("histories", "detection-scratch"), ("compare", "Run A"),
                         ("live", "No photo at hand")):
        page.goto(f"{server}/{path}?experiment=photos")
        page.get_by_text("Experiment photos:").first.wait_for()
        wait_until_idle(page)
        body = page.inner_text("body")
        assert expect in body and "drawn pets (synthetic)" not in body, path
        assert_no_error(page)
    page.goto(f"{server}/live?experiment=demo")
    page.get_by_text("Experiment demo:").first.wait_for()
    page.get_by_role("button", name="test ").first.click()
    page.get_by_text("learned drawn pets: their guess on a real photo means nothing").wait_for()


def test_grad_cam_toggle_draws_heat_maps_on_compare(page, server):
    page.goto(f"{server}/compare?experiment=demo")
    page.get_by_role("heading", name="Compare predictions").wait_for()
    wait_until_idle(page)
    images = page.locator("[data-testid='stImage']").count()
    page.get_by_text("Grad-CAM heat maps").click()
    page.get_by_text("Grad-CAM of detection-pretrained's top breed").first.wait_for()
    wait_until_idle(page)
    # detection-pretrained and detection-scratch both have a breed head: one map per picture.
    assert page.locator("[data-testid='stImage']").count() == 2 * images
    assert page.get_by_text("Grad-CAM of detection-scratch's top breed").count() == images // 2
    assert_no_error(page)


def test_grad_cam_toggle_draws_heat_maps_for_an_upload(page, server, tmp_path):
    upload_drawn_pet(page, f"{server}/live?experiment=demo", tmp_path / "whose_coat.png", label=11, seed=3)
    answers = page.locator("[data-testid='stImage']").count()
    page.get_by_text("Grad-CAM heat maps").click()
    page.get_by_text("Grad-CAM of multitask-pretrained's top breed").first.wait_for()
    wait_until_idle(page)
    # The demo experiment's six runs: four have a breed head (detection, multitask), two do not.
    assert page.locator("[data-testid='stImage']").count() == answers + 4
    for run_id in ("detection-pretrained", "detection-scratch", "multitask-pretrained", "multitask-scratch"):
        assert page.get_by_text(f"Grad-CAM of {run_id}'s top breed").count() == 1
    assert page.get_by_text("Grad-CAM of segmentation").count() == 0
    assert_no_error(page)
