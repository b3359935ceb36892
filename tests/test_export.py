"""The HTML export: one file, every section, opened in headless Chromium with the network blocked."""
import re
import subprocess
import sys

import pytest

from conftest import ROOT, require_browser
from labcore.export import SECTIONS, export_html
from labcore.runs import list_runs


@pytest.fixture(scope="module")
def exported(demo_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "lab.html"
    result = subprocess.run([sys.executable, "-m", "labcore.export", "--runs-dir", str(demo_store),
                             "--experiment", "demo", "-o", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote" in result.stdout and "MB" in result.stdout
    return out


def test_the_export_is_one_self_contained_file(exported):
    text = exported.read_text()
    assert text.count("<section") == len(SECTIONS)
    # plotly.js is inlined exactly once; no script or picture comes from elsewhere.
    assert len(re.findall(r"<script[^>]*\bsrc=", text)) == 0
    assert text.count("plotly.js v") >= 1 and len(text) > 3_000_000
    # (plotly.js itself holds links, e.g. to plotly.com for its logo; the markup around it none.)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    assert text.count('src="data:image/jpeg;base64,') >= 4
    assert "Q1." in text and "Q2." in text and "Q3." in text
    assert "Most confused pairs" in text and "Grad-CAM of" in text
    assert "page-break-before: always" in text
    # The experiment's provenance, and why its numbers do not stand beside the report's.
    assert "Experiment <b>demo</b>: drawn pets (synthetic)" in text
    assert "<b>Not comparable</b> with the report's numbers: trained on drawn pets" in text


def test_the_cli_says_what_is_wrong(demo_store, tmp_path):
    def export(*args):
        return subprocess.run([sys.executable, "-m", "labcore.export", *args, "-o", str(tmp_path / "x.html")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    nothing = export("--runs-dir", str(tmp_path / "none"))
    assert nothing.returncode == 1 and "no experiments in" in nothing.stderr and "Traceback" not in nothing.stderr
    wrong = export("--runs-dir", str(demo_store), "--experiment", "report")
    assert wrong.returncode == 1 and "no experiment 'report'" in wrong.stderr and "there are: demo" in wrong.stderr


def test_old_runs_without_confusion_say_retrain(demo_runs_copy, tmp_path):
    (demo_runs_copy / "detection-scratch" / "confusion.json").unlink()
    out = tmp_path / "lab.html"
    export_html(list_runs(demo_runs_copy), out, "t", str(demo_runs_copy))
    assert "retrain to see this" in out.read_text()


def test_the_export_opens_offline_in_chromium_with_every_section(exported):
    sync_api, chromium = require_browser("sync_api")
    from test_browser import CHROMIUM_ARGS

    requested, blocked = [], []

    def route(route):
        requested.append(route.request.url)
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route("**/*", route)
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(exported.as_uri())
        page.wait_for_load_state("load")
        for key in SECTIONS:
            assert page.locator(f"section#{key} h2").is_visible(), key
        # plotly drew its figures (its inlined script ran offline).
        page.locator(".plot .main-svg").first.wait_for(timeout=60_000)
        assert page.locator(".plot .js-plotly-plot").count() >= 3
        assert page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        browser.close()
    assert blocked == [] and errors == []
    assert requested and all(u.startswith(("file:", "data:")) for u in requested)
