"""The HTML export: one file, every section, opened in headless Chromium with the network blocked."""
import html
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, require_browser
from labcore.show.export import export_html
from labcore.show.report import PRESETS
from labcore.store.runs import list_runs
from labcore.settings import RUN_IDS, RUNS

# The sections a reader finds, in order: (id, heading).
HEADINGS = [
    ("provenance", "Provenance"),
    ("runs", "The runs"),
    ("report", "The report's numbers beside ours (validation)"),
    ("curves", "Training curves of the presets"),
    ("predictions", "Predictions on the same test images"),
    ("breeds", "Per-breed results (test split)"),
    ("questions", "The report's three questions, from these runs"),
    ("efficiency", "Data efficiency: pretrained against scratch by the number of training images"),
]
PICTURES = 4  # test images per run and preset in the predictions section
# The runs table's columns and the metrics.json entries they show.
COLUMNS = {"label accuracy": "label_accuracy", "label top-5 accuracy": "label_top5_accuracy", "box MAE": "bbox_mae",
           "box IoU": "bbox_iou", "mask pixel accuracy": "mask_pixel_accuracy", "mask mean IoU": "mask_miou"}


@pytest.fixture(scope="module")
def exported(demo_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "lab.html"
    result = subprocess.run([sys.executable, "-m", "labcore.show.export", "--runs-dir", str(demo_store),
                             "--experiment", "demo", "-o", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote" in result.stdout and "MB" in result.stdout
    return out


def section(text: str, key: str) -> str:
    start = text.index(f'<section id="{key}">')
    return text[start:text.index("</section>", start)]


def test_the_export_is_one_self_contained_file(exported):
    text = exported.read_text()
    assert re.findall(r'<section id="(\w+)"><h2>(.*?)</h2>', text) == [(k, html.escape(h)) for k, h in HEADINGS]
    # plotly.js is inlined exactly once; no script or picture comes from elsewhere.
    assert len(re.findall(r"<script[^>]*\bsrc=", text)) == 0
    assert text.count("plotly.js v") >= 1 and len(text) > 3_000_000
    # (plotly.js itself holds links, e.g. to plotly.com for its logo; the markup around it none.)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    # Each preset's two runs, each on the same test images: the prediction, and under a breed
    # head its Grad-CAM.
    predictions = section(text, "predictions")
    assert re.findall(r"<h3>(.*?)</h3>", predictions) == [html.escape(name) for name in PRESETS]
    drawn = re.findall(r'<div><h4>(.*?)</h4>((?:<figure>.*?</figure>)*)</div>', predictions)
    expected = [run_id for pair in PRESETS.values() for run_id in pair]
    assert [label.split(" (")[0] for label, _ in drawn] == expected
    for (label, figures), run_id in zip(drawn, expected):
        assert figures.count("<figure>") == PICTURES * (2 if "label" in RUNS[run_id].outputs else 1), label
    assert text.count('src="data:image/jpeg;base64,') == sum(PICTURES * (2 if "label" in RUNS[r].outputs else 1)
                                                            for r in expected)
    assert "Q1." in text and "Q2." in text and "Q3." in text
    assert "Most confused pairs" in text and "Grad-CAM of" in text
    assert "page-break-before: always" in text
    # The experiment's provenance, and why its numbers do not stand beside the report's.
    assert "Experiment <b>demo</b>: drawn pets (synthetic)" in text
    assert "<b>Not comparable</b> with the report's numbers: trained on drawn pets" in text


def test_the_export_shows_each_runs_stored_metrics(exported, demo_runs):
    text = exported.read_text()
    tables = re.findall(r"<h3>Metrics on (validation|test split)</h3><table>(.*?)</table>", section(text, "runs"))
    assert [name for name, _ in tables] == ["validation", "test split"]
    for (_, table), split in zip(tables, ("val", "test")):
        header = re.findall(r"<th>(.*?)</th>", table)
        rows = {cells[0].split(" (")[0]: dict(zip(header, cells))
                for cells in (re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", table))}
        assert list(rows) == list(RUN_IDS)
        for run_id in RUN_IDS:
            stored = json.loads((demo_runs / run_id / "metrics.json").read_text())[split]
            shown = {column: rows[run_id].get(column) for column, key in COLUMNS.items() if key in stored}
            assert shown and shown == {column: f"{stored[COLUMNS[column]]:.4g}" for column in shown}, (split, run_id)
    breeds = section(text, "breeds")
    for run_id in RUN_IDS:
        if "label" in RUNS[run_id].outputs:
            accuracy = json.loads((demo_runs / run_id / "metrics.json").read_text())["test"]["label_accuracy"]
            assert f"Breed accuracy {accuracy:.3f} over " in breeds.split(f"<h3>{run_id}")[1].split("<h3>")[0]


def test_the_cli_says_what_is_wrong_in_one_line(demo_store, tmp_path):
    from labcore.store.experiments import record_settings
    from labcore.settings import PROFILES

    def export(*args, output=str(tmp_path / "x.html")):
        result = subprocess.run([sys.executable, "-m", "labcore.show.export", *args, "-o", output],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        [line] = result.stderr.strip().splitlines()
        return line

    assert export("--runs-dir", str(tmp_path / "none")) == (
        f"labcore.show.export: no experiments in {tmp_path / 'none'}; train some with `python train.py --profile demo`")
    assert export("--runs-dir", str(demo_store), "--experiment", "report") == (
        f"labcore.show.export: no experiment 'report' in {demo_store}; there are: demo")
    record_settings(tmp_path / "empty" / "quick", "quick", PROFILES["quick"])  # settings, no finished run
    assert export("--runs-dir", str(tmp_path / "empty")) == (
        f"labcore.show.export: no finished runs in {tmp_path / 'empty' / 'quick'}")
    assert not list(tmp_path.rglob("*.html"))


def test_the_cli_defaults_to_the_newest_experiment_of_runs_into_lab_html(two_experiments, tmp_path):
    """`python -m labcore.show.export` with no option: the runs root the app reads ($PETLAB_RUNS_DIR
    here; a relative root is the project's, see test_runs), its newest experiment (photos,
    trained after demo), lab.html in the working folder."""
    import os

    env = {**os.environ, "PETLAB_RUNS_DIR": str(two_experiments), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "labcore.show.export"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.fullmatch(r"wrote lab\.html \(\d+\.\d MB, 2 runs\)\n", result.stdout)
    text = (tmp_path / "lab.html").read_text()
    assert "<title>Transfer learning on Oxford-IIIT Pet: photos</title>" in text
    assert re.findall(r"<tr><td>([a-z-]+)</td>", section(text, "provenance")) == ["detection-scratch",
                                                                                   "segmentation-scratch"]


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
        for key, _ in HEADINGS:
            assert page.locator(f"section#{key} h2").is_visible(), key
        # plotly drew its figures (its inlined script ran offline).
        page.locator(".plot .main-svg").first.wait_for(timeout=60_000)
        assert page.locator(".plot .js-plotly-plot").count() >= 3
        assert page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        browser.close()
    assert blocked == [] and errors == []
    assert requested and all(u.startswith(("file:", "data:")) for u in requested)


def test_the_export_reuses_the_models_it_is_handed(demo_runs, monkeypatch):
    """The app hands the export its loaded models: the export loads none of its own, and the
    Grad-CAM it draws is traced on the model it was handed."""
    from labcore.show import gradcam
    from labcore.show.export import build_html
    from labcore.show.inference import Predictor

    runs = list_runs(demo_runs)
    loaded = {run.run_id: Predictor.from_run(run) for run in runs}  # as the app's cache holds them
    handed = []

    def load(run):
        handed.append(run.run_id)
        return loaded[run.run_id]

    def refuse(cls, run):
        raise AssertionError(f"the export loaded {run.run_id} again")

    monkeypatch.setattr(Predictor, "from_run", classmethod(refuse))
    page = build_html(runs, "reused", str(demo_runs), load=load)
    presets = {run_id for pair in PRESETS.values() for run_id in pair}
    assert set(handed) == presets and len(handed) == len(presets)  # each preset run once
    assert section(page, "predictions").count("<img") > 0
    breed_heads = [r for r in presets if not r.startswith("segmentation")]
    assert all(loaded[r] in gradcam._CACHE for r in breed_heads)  # Grad-CAM traced on the handed model


def test_the_class_board_is_in_the_export_only_when_asked_and_without_photos(exported):
    from labcore.show.board import Board
    from labcore.show.export import Page, board_section

    assert '<section id="board">' not in exported.read_text()
    board = Board()
    board.record("s1", "p1", {"detection-pretrained": (4, 1, 2, 3, 5)}, breed=4, thumbnail=b"\xff\xd8 a photo")
    board.record("s2", "p2", {"detection-pretrained": (1, 2, 3, 5, 6)}, breed=4)
    page = Page()
    board_section(page, board.tally())
    text = "".join(page.parts)
    assert "2 pets uploaded by the class; 2 with the breed their owner named" in text
    assert "<td>detection</td><td>0.50 (1 of 2)</td><td>0.50 (1 of 2)</td><td>—</td><td>—</td>" in text
    assert "<img" not in text and "data:image" not in text
