"""The real app, served by `streamlit run`, driven in headless Chromium (Debian's, via Playwright).

Skips, saying why, where Chromium or Playwright is missing; CI installs both and makes such a
skip a failure (PETLAB_REQUIRE_BROWSER=1, conftest.py). Every test waits for what it asserts
(`settle`): Streamlit done with its script run, and the element itself, counted.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from conftest import REQUIRE_BROWSER_ENV, ROOT, require_browser
from labcore.store.experiments import app_command
from labcore.settings import BREEDS, RUN_IDS, breed_name
from labcore.data.sources import draw_pet

PAGES = {"": "Transfer learning on Oxford-IIIT Pet", "histories": "Training histories", "compare": "Compare predictions",
         "live": "Live inference", "dataset": "Dataset", "breeds": "Per-breed results",
         "present": "Transfer learning on Oxford-IIIT Pet"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000  # loading six models, or tracing Grad-CAM, on a busy 2-core CPU
STOP_WAIT_S = 20
SERVER_FLAGS = ["--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
# What each task's answer on the live page lists before its time.
OUTPUTS = {"detection": "breed, head box", "segmentation": "mask", "multitask": "breed, head box, mask"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """`command` (`streamlit run app.py [...]`, as a user types it) served on a free loopback
    port; yields its address and stops it afterwards.

    The server's output goes to a file, not a pipe nobody reads while it runs (a full pipe would
    block the server). Stopping escalates, as `scripts/load.py`'s `serve` does: on a busy CI
    machine a server has stayed up 20 s after SIGTERM, past "Stopping..." (cause not found;
    uvicorn, which Streamlit runs on, waits for open connections without a limit). A test that
    has passed is not failed by its teardown: it warns, with the server's output, and kills."""
    assert command[:3] == ["streamlit", "run", "app.py"], command
    port = free_port()
    args = [sys.executable, "-m", "streamlit", "run", "app.py", *SERVER_FLAGS, "--server.port", str(port), *command[3:]]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 90
            while time.time() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.5)
            else:
                proc.kill()
                proc.wait()
                log.seek(0)
                pytest.fail("streamlit did not start: " + log.read())
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                log.seek(0)
                warnings.warn(f"streamlit ignored SIGTERM for {STOP_WAIT_S} s and was killed; its output ended:\n"
                              + log.read()[-2000:])


@pytest.fixture(scope="module")
def playwright_chromium():
    """(playwright.sync_api, the Chromium path): first, so a missing browser starts no server."""
    return require_browser("sync_api")


@pytest.fixture(scope="module")
def server(playwright_chromium, two_experiments):
    env = {**os.environ, "PETLAB_RUNS_DIR": str(two_experiments)}
    with streamlit_server(["streamlit", "run", "app.py"], env) as url:
        yield url


@pytest.fixture(scope="module")
def browser(playwright_chromium):
    sync_api, chromium = playwright_chromium
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, server):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.set_default_timeout(WAIT_MS)
    yield tab
    tab.close()


def settle(page, *expected) -> None:
    """Wait for what a test is about to assert: each (locator, count) in `expected` matching
    exactly that many elements, and Streamlit done with its script run (the app root says
    notRunning and the status widget is gone). Either wait alone is a race: the root still says
    notRunning in the moment between a click and the rerun it asks for, and a count can pass
    through the right number on its way to another. So: counts, then the script state, then the
    counts again, now that nothing is drawing."""
    from playwright.sync_api import expect

    for locator, count in expected:
        expect(locator).to_have_count(count, timeout=WAIT_MS)
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=WAIT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
    for locator, count in expected:
        expect(locator).to_have_count(count, timeout=WAIT_MS)


def title(page, text: str):
    return page.locator("h1").filter(has_text=text)


def assert_no_error(page) -> None:
    body = page.inner_text("body")
    assert "Traceback" not in body
    assert page.locator("[data-testid='stException']").count() == 0


def browser_outcome(api: str) -> tuple[str, str]:
    """What `require_browser(api)` does to a test: ("skip" | "fail" | "run", its message)."""
    try:
        require_browser(api)
    except pytest.skip.Exception as outcome:
        return "skip", str(outcome)
    except pytest.fail.Exception as outcome:
        return "fail", str(outcome)
    return "run", ""


def test_a_missing_browser_skips_here_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv(REQUIRE_BROWSER_ENV, raising=False)
    assert browser_outcome("sync_api") == ("skip", "Debian's chromium is not on PATH (apt-get install chromium)")
    monkeypatch.setenv(REQUIRE_BROWSER_ENV, "1")
    kind, message = browser_outcome("sync_api")
    assert kind == "fail" and "chromium is not on PATH" in message and "PETLAB_REQUIRE_BROWSER=1 requires" in message
    monkeypatch.undo()  # Chromium back where it is; now Playwright missing
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)
    monkeypatch.setenv(REQUIRE_BROWSER_ENV, "1")
    kind, message = browser_outcome("async_api")
    assert kind == "fail" and "playwright is not installed" in message


def test_every_page_renders(page, server):
    for path, heading in PAGES.items():
        page.goto(f"{server}/{path}")
        settle(page, (title(page, heading), 1))
        assert_no_error(page)


def upload_drawn_pet(page, url: str, photo: Path, label: int, seed: int) -> None:
    """Open the live page at `url` and upload a drawn pet saved as `photo`."""
    image, _, _ = draw_pet(label, np.random.default_rng(seed), size=200)
    Image.fromarray(image).save(photo)
    page.goto(url)
    settle(page, (title(page, "Live inference"), 1))
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_text(photo.name).first.wait_for()


def answers(page):
    """The live page's answers: one column per model, each ending in its time."""
    return page.get_by_test_id("stColumn").filter(has_text=re.compile(r" · \d+ ms\s*$"))


def test_upload_a_photo_and_see_every_models_answer_with_its_time(page, server, tmp_path):
    upload_drawn_pet(page, f"{server}/live?experiment=demo", tmp_path / "my_cat.jpg", label=5, seed=1)
    settle(page, (answers(page), len(RUN_IDS)))
    top_breed = "|".join(re.escape(breed_name(i)) for i in range(len(BREEDS)))
    for run_id in RUN_IDS:
        answer = answers(page).filter(has=page.get_by_text(re.compile(rf"^{run_id}( \(|$)")))
        assert answer.count() == 1, run_id
        text = answer.inner_text()
        assert re.search(rf"^{OUTPUTS[run_id.split('-')[0]]} · \d+ ms$", text, re.MULTILINE), (run_id, text)
        top5 = re.findall(rf"^({top_breed}) — \d+%$", text, re.MULTILINE)  # a markdown list: numbers drawn apart
        assert len(set(top5)) == (0 if run_id.startswith("segmentation") else 5), (run_id, text)
    assert_no_error(page)


def test_upload_a_broken_file_and_see_the_message(page, server, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg at all")
    page.goto(f"{server}/live")
    settle(page, (title(page, "Live inference"), 1))
    page.locator("input[type=file]").set_input_files(str(broken))
    settle(page, (page.get_by_text("is not an image this app can read"), 1))
    assert_no_error(page)


def test_switching_experiments_in_the_sidebar_changes_every_page(page, server):
    page.goto(f"{server}/?experiment=demo")
    settle(page, (page.get_by_text("Experiment demo:").first, 1))
    assert "Not comparable" in page.inner_text("body")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="photos").click()
    settle(page, (page.get_by_text("Experiment photos:").first, 1))
    assert "photos" in page.url  # the address keeps the choice, so a link opens the same experiment
    for path, expect in (("histories", "detection-scratch"), ("compare", "Run A"),
                         ("live", "No photo at hand")):
        page.goto(f"{server}/{path}?experiment=photos")
        settle(page, (page.get_by_text("Experiment photos:").first, 1), (page.get_by_text(expect).first, 1))
        body = page.inner_text("body")
        assert "drawn pets (synthetic)" not in body, path
        assert_no_error(page)
    page.goto(f"{server}/live?experiment=demo")
    settle(page, (page.get_by_text("Experiment demo:").first, 1))
    page.get_by_role("button", name="test ").first.click()
    settle(page, (page.get_by_text("learned drawn pets: their guess on a real photo means nothing"), 1))


def test_grad_cam_toggle_draws_heat_maps_on_compare(page, server):
    page.goto(f"{server}/compare?experiment=demo")
    shown = 4  # the "How many" slider's default; the demo pair is detection-pretrained and -scratch
    pictures = page.get_by_test_id("stImage")
    settle(page, (title(page, "Compare predictions"), 1), (page.get_by_text(re.compile(r"^Test image \d+")), shown),
           (pictures, 2 * shown))
    page.get_by_text("Grad-CAM heat maps").click()
    # Both runs have a breed head: one map under each of their pictures.
    settle(page, (pictures, 4 * shown),
           (page.get_by_text("Grad-CAM of detection-pretrained's top breed"), shown),
           (page.get_by_text("Grad-CAM of detection-scratch's top breed"), shown))
    assert_no_error(page)


def test_grad_cam_toggle_draws_heat_maps_for_an_upload(page, server, tmp_path):
    upload_drawn_pet(page, f"{server}/live?experiment=demo", tmp_path / "whose_coat.png", label=11, seed=3)
    pictures = page.get_by_test_id("stImage")
    settle(page, (answers(page), len(RUN_IDS)), (pictures, len(RUN_IDS)))
    page.get_by_text("Grad-CAM heat maps").click()
    # The demo experiment's six runs: four have a breed head (detection, multitask), two do not.
    with_breed = [r for r in RUN_IDS if not r.startswith("segmentation")]
    settle(page, (pictures, len(RUN_IDS) + len(with_breed)),
           *((page.get_by_text(f"Grad-CAM of {run_id}'s top breed"), 1) for run_id in with_breed))
    assert page.get_by_text("Grad-CAM of segmentation").count() == 0
    assert_no_error(page)


def test_the_app_serves_the_runs_root_after_a_double_dash_even_with_spaces(browser, demo_store, tmp_path):
    """`streamlit run app.py -- --runs-dir DIR`, the command train.py prints, with DIR holding a
    space and a quote: the app shows that root's experiment and runs."""
    root = tmp_path / "lab runs" / "Bob's pets"
    shutil.copytree(demo_store, root)
    env = {k: v for k, v in os.environ.items() if k != "PETLAB_RUNS_DIR"}
    command = shlex.split(app_command(root))
    assert command[3:] == ["--", "--runs-dir", str(root)]
    with streamlit_server(command, env) as url:
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.goto(url)
        runs_table = tab.get_by_test_id("stTable").first
        settle(tab, (tab.get_by_text("Experiment demo:").first, 1),
               *((runs_table.get_by_text(re.compile(rf"^{run_id}( \(|$)")), 1) for run_id in RUN_IDS))
        assert_no_error(tab)
        tab.close()
