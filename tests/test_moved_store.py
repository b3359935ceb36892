"""Train where the data is, present where it is not: an experiment trained on a photo folder
(in a path with a space), the folder deleted, the experiment copied under another root (spaces
again), served with `streamlit run app.py -- --runs-dir ROOT` and driven in headless Chromium.
Every page must work from the store alone: the showcase stored with the experiment."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, run_train, write_pets_folder
from test_browser import CHROMIUM, CHROMIUM_ARGS, assert_no_error, free_port, sync_api, wait_until_idle

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
BREED_NAMES = ("Abyssinian", "American Bulldog", "Bengal")  # the three breeds write_pets_folder draws
STORED = "the data is not on this machine: the 6 test images stored with the experiment"
FALLBACKS = ("Use the synthetic source instead", "is not an Oxford-IIIT Pet folder", "not prepared")


@pytest.fixture(scope="module")
def moved_root(tmp_path_factory):
    """The runs root on the 'laptop': only `photos/`, copied from the 'GPU machine', whose data is gone."""
    base = tmp_path_factory.mktemp("moved")
    pets = write_pets_folder(base / "pet photos" / "oxford pets")
    trained = base / "gpu box" / "runs"
    result = run_train(["--profile", "quick", "--tiny-backbones", "--dataset", "folder", "--data-dir", str(pets.root),
                        "--only", "multitask-pretrained", "multitask-scratch", "--epochs", "1",
                        "--image-size", "32", "--name", "photos"], trained)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "showcase: 6 test images stored in" in result.stdout
    shutil.rmtree(base / "pet photos")
    root = base / "the laptop" / "class runs"
    shutil.copytree(trained / "photos", root / "photos")
    shutil.rmtree(base / "gpu box")
    return root


@pytest.fixture(scope="module")
def server(moved_root):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--", "--runs-dir", str(moved_root)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        tab = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        tab.set_default_timeout(120_000)
        yield tab
        browser.close()


def open_page(page, url: str, title: str) -> str:
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for()
    wait_until_idle(page)
    assert_no_error(page)
    body = page.inner_text("body")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    assert not [words for words in FALLBACKS if words in body]
    return body


def test_compare_shows_the_stored_test_images_with_truth_and_predictions(page, server):
    body = open_page(page, f"{server}/compare", "Compare predictions")
    assert STORED in body
    shown = page.locator("[data-testid='stImage']").count()
    assert shown == 2 * 4  # four test images (the slider's default) through both runs
    headings = [h for h in body.splitlines() if h.startswith("Test image ")]
    assert len(headings) == 4 and all(h.split(": ")[1] in BREED_NAMES for h in headings)
    assert body.count("mask IoU") == 8  # each prediction scored against the stored true mask
    top5 = page.locator("[data-testid='stMarkdown'] ol li").all_inner_texts()
    assert len(top5) == 8 * 5 and all(re.search(r" \d+%", line) for line in top5)  # five breeds per picture


def test_live_examples_answer(page, server):
    body = open_page(page, f"{server}/live", "Live inference")
    assert STORED in body
    buttons = page.locator("[data-testid='stButton'] button").filter(has_text="test ")
    assert buttons.count() == 3  # one example per breed
    buttons.first.click()
    page.get_by_text("multitask-scratch").first.wait_for()
    wait_until_idle(page)
    assert_no_error(page)
    assert page.inner_text("body").count(" ms") == 2  # both models answered


def test_dataset_and_per_breed_render(page, server):
    body = open_page(page, f"{server}/dataset", "Dataset")
    assert STORED in body
    assert page.locator("[data-testid='stImage']").count() == 6  # all six stored images (8 asked)
    charts = page.locator("[data-testid='stPlotlyChart']")
    charts.first.wait_for()  # the chart element loads after the script has finished
    assert charts.count() == 1  # the class balance
    open_page(page, f"{server}/breeds", "Per-breed results")
    charts.nth(3).wait_for()
    assert charts.count() == 4  # bars and heat map per run
    for n in range(4):  # plotly draws a chart once it is on screen
        charts.nth(n).scroll_into_view_if_needed()
        charts.nth(n).locator(".js-plotly-plot").wait_for()
    heat_rows = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .map(p => p.data[0]).filter(t => t.type === 'heatmap').map(t => t.y)""")
    assert heat_rows == [list(BREED_NAMES), list(BREED_NAMES)]


def test_the_export_is_written_from_the_store_alone(page, server, tmp_path):
    open_page(page, server, "Transfer learning on Oxford-IIIT Pet")
    with page.expect_download(timeout=300_000) as download:
        page.get_by_role("button", name="Download the lab as one HTML file").click()
    saved = tmp_path / "lab.html"
    download.value.save_as(saved)
    html = saved.read_text()
    assert STORED in html
    assert "the test images are not at hand" not in html
    assert html.count("data:image/jpeg;base64,") >= 2 * 4  # the preset's two runs on four stored images
