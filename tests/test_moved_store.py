"""Train where the data is, present where it is not: an experiment trained on a photo folder
(in a path with a space), the folder deleted, the experiment copied under another root (spaces
again), served with `streamlit run app.py -- --runs-dir ROOT` and driven in headless Chromium.
Every page must work from the store alone: the showcase stored with the experiment."""
from __future__ import annotations

import os
import re
import shlex
import shutil

import pytest

from conftest import run_train, write_pets_folder
from labcore.store.experiments import app_command
from test_browser import (WAIT_MS, answers, assert_no_error, browser, playwright_chromium,  # noqa: F401 - fixtures
                          settle, streamlit_server, title)

BREED_NAMES = ("Abyssinian", "American Bulldog", "Bengal")  # the three breeds write_pets_folder draws
STORED = "the data is not on this machine: the 6 test images stored with the experiment"
FALLBACKS = ("Use the synthetic source instead", "is not an Oxford-IIIT Pet folder", "not prepared")


@pytest.fixture(scope="module")
def moved_root(playwright_chromium, tmp_path_factory):
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
    """`streamlit run app.py -- --runs-dir ROOT`, as the README says to present."""
    env = {k: v for k, v in os.environ.items() if k != "PETLAB_RUNS_DIR"}
    with streamlit_server(shlex.split(app_command(moved_root)), env) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, server):
    tab = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    tab.set_default_timeout(WAIT_MS)
    yield tab
    tab.close()


def open_page(page, url: str, heading: str, *expected) -> str:
    """Open `url`, wait for its title and the `expected` (locator, count) pairs; no error, no fallback."""
    page.goto(url)
    settle(page, (title(page, heading), 1), *expected)
    assert_no_error(page)
    body = page.inner_text("body")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    assert not [words for words in FALLBACKS if words in body]
    return body


def test_compare_shows_the_stored_test_images_with_truth_and_predictions(page, server):
    pictures = page.get_by_test_id("stImage")
    body = open_page(page, f"{server}/compare", "Compare predictions", (pictures, 2 * 4))  # 4 images, 2 runs
    assert STORED in body
    headings = [h for h in body.splitlines() if h.startswith("Test image ")]
    assert len(headings) == 4 and all(h.split(": ")[1] in BREED_NAMES for h in headings)
    assert body.count("mask IoU") == 8  # each prediction scored against the stored true mask
    top5 = page.locator("[data-testid='stMarkdown'] ol li").all_inner_texts()
    assert len(top5) == 8 * 5 and all(re.search(r" \d+%", line) for line in top5)  # five breeds per picture


def test_live_examples_answer(page, server):
    examples = page.get_by_test_id("stButton").filter(has_text=re.compile(r"^test \d+: "))
    body = open_page(page, f"{server}/live", "Live inference", (examples, 3))  # one example per breed
    assert STORED in body
    examples.first.get_by_role("button").click()
    settle(page, (answers(page), 2))  # both models answered, each with its time
    assert_no_error(page)


def test_dataset_and_per_breed_render(page, server):
    charts = page.get_by_test_id("stPlotlyChart")
    body = open_page(page, f"{server}/dataset", "Dataset", (page.get_by_test_id("stImage"), 6), (charts, 1))
    assert STORED in body  # all six stored images shown (eight asked), and the class balance
    open_page(page, f"{server}/breeds", "Per-breed results", (charts, 4))  # bars and heat map per run
    for n in range(4):  # plotly draws a chart once it is on screen
        charts.nth(n).scroll_into_view_if_needed()
        charts.nth(n).locator(".js-plotly-plot").wait_for()
    heat_rows = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .map(p => p.data[0]).filter(t => t.type === 'heatmap').map(t => t.y)""")
    assert heat_rows == [list(BREED_NAMES), list(BREED_NAMES)]


def test_the_export_is_written_from_the_store_alone(page, server, tmp_path):
    open_page(page, server, "Transfer learning on Oxford-IIIT Pet")
    with page.expect_download(timeout=WAIT_MS) as download:
        page.get_by_role("button", name="Download the lab as one HTML file").click()
    saved = tmp_path / "lab.html"
    download.value.save_as(saved)
    html = saved.read_text()
    assert STORED in html
    assert "the test images are not at hand" not in html
    assert html.count("data:image/jpeg;base64,") >= 2 * 4  # the preset's two runs on four stored images
