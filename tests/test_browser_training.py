"""Training the demo from the Overview, in the real app (`streamlit run`) and headless Chromium:
the button starts train.py in the background, the page shows its progress and fills by itself,
and a second tab's click starts no second training. The demo is made tiny by the test-only
$PETLAB_DEMO_ARGS (tiny backbones, 32 px, two scratch runs, one after the other)."""
from __future__ import annotations

import os
import time

import pytest

from conftest import require_browser
from labcore.store import inflight
from test_browser import CHROMIUM_ARGS, settle, streamlit_server

TINY_DEMO = "--tiny-backbones --image-size 32 --limit 64 --epochs 3 --jobs 1 --only segmentation-scratch multitask-scratch"
BUTTON = "Train the demo here"


@pytest.fixture
def empty_store_server(tmp_path):
    """The app served on 127.0.0.1 on an empty runs root; the root, the url, and Playwright's
    sync_api with the Chromium to drive (asked for first: a missing browser starts no server)."""
    sync_api, chromium = require_browser("sync_api")
    root = tmp_path / "runs"
    env = {**os.environ, "PETLAB_RUNS_DIR": str(root), inflight.DEMO_ARGS_ENV: TINY_DEMO}
    try:
        with streamlit_server(["streamlit", "run", "app.py"], env) as url:
            yield root, url, sync_api, chromium
    finally:
        holder = inflight.holder(root)  # a training the test left behind (it failed half way)
        if holder:
            os.kill(holder["pid"], 15)


def test_the_button_trains_the_demo_once_and_the_overview_fills_without_a_reload(empty_store_server):
    root, url, sync_api, chromium = empty_store_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        first, second = (browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(2))
        for tab in (first, second):
            tab.set_default_timeout(120_000)
            tab.goto(url)
            tab.get_by_role("button", name=BUTTON).wait_for()
        first.get_by_role("button", name=BUTTON).click()
        first.get_by_text("train.py (process").or_(first.get_by_text("Training experiment")).first.wait_for()
        if second.get_by_role("button", name=BUTTON).count():  # not redrawn yet: it still offers it
            second.get_by_role("button", name=BUTTON).click()
        first.get_by_text("Training experiment").first.wait_for()  # the plan: runs, epochs, time left
        first.get_by_text("2 of 6 runs in").wait_for(timeout=300_000)  # filled as the runs finished
        settle(first, (first.get_by_role("button", name=BUTTON), 0))
        assert "Traceback" not in first.inner_text("body")
        browser.close()
    deadline = time.time() + 60
    while inflight.holder(root) and time.time() < deadline:
        time.sleep(0.5)
    log = (root / inflight.LOG_FILE).read_text()
    assert log.count("started from the app") == 1, log
    assert all((root / "demo" / run / "model.keras").is_file() for run in ("segmentation-scratch", "multitask-scratch"))


def test_through_a_forwarder_or_at_a_rebound_name_the_page_offers_no_button(empty_store_server):
    """What the presenter check reads in a real server (AppTest has no socket and no headers):
    the browser on this machine gets the button; the same browser through a forwarder that says
    so, or at another site's name rebound to 127.0.0.1 (DNS rebinding), gets the terminal command.
    The forwarder here sends X-Real-IP: Streamlit's server (uvicorn) already takes a loopback
    peer's X-Forwarded-For as the client's address, not X-Real-IP or Forwarded."""
    root, url, sync_api, chromium = empty_store_server
    port = url.rsplit(":", 1)[1]
    visitor = "is for a browser on the machine that serves the app"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebound.example 127.0.0.1"])
        presenter = browser.new_page()
        forwarded = browser.new_context(extra_http_headers={"X-Real-IP": "203.0.113.7"}).new_page()
        rebound = browser.new_page()
        for page, address in ((presenter, url), (forwarded, url), (rebound, f"http://rebound.example:{port}")):
            page.set_default_timeout(120_000)
            page.goto(address)
        presenter.get_by_role("button", name=BUTTON).wait_for()
        for page in (forwarded, rebound):
            page.get_by_text(visitor).wait_for()
            assert page.get_by_role("button", name=BUTTON).count() == 0
            page.locator("code", has_text="python train.py --profile demo").first.wait_for()
        browser.close()
    assert not (root / inflight.LOG_FILE).exists()
