"""The Streamlit app, page by page, through streamlit.testing's AppTest: against the tiny demo
store, an empty store and damaged runs. No page may raise; each must show what it is for."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from labcore.plots import history_keys
from labcore.runs import RUNS_DIR_ENV, list_runs
from labcore.settings import RUN_IDS

ROOT = Path(__file__).resolve().parents[1]

PAGES = ["app_pages/1_overview.py", "app_pages/2_histories.py", "app_pages/3_compare.py",
         "app_pages/4_live.py", "app_pages/5_dataset.py"]
TIMEOUT = 180  # loading six models on a slow 2-core CPU


def open_page(page: str, runs_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv(RUNS_DIR_ENV, str(runs_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "code", "subheader", "title")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_with_no_runs_says_how_to_make_them(page, tmp_path, monkeypatch):
    at = open_page(page, tmp_path / "nothing-here", monkeypatch)
    assert any("python train.py --profile demo" in c.value for c in at.code)
    assert "No runs in" in texts(at)


def test_overview_has_a_row_per_run_the_report_and_three_answers(demo_runs, monkeypatch):
    at = open_page(PAGES[0], demo_runs, monkeypatch)
    runs_table, report = at.table[0].value, at.table[1].value
    assert len(runs_table) == len(RUN_IDS)
    assert "detection-pretrained (synthetic-pretext)" in set(runs_table["run"])
    assert {"label accuracy", "box MAE", "mask pixel accuracy"} <= set(runs_table.columns)
    assert {"report pretrained", "ours pretrained", "report scratch", "ours scratch"} <= set(report.columns)
    shown = texts(at)
    assert all(f"Q{n}." in shown for n in (1, 2, 3))
    assert "wins" in shown or "about even" in shown
    assert "as good" in shown  # Q3 has all it needs: a verdict, not a missing-run note


def test_overview_with_a_corrupt_metrics_file_shows_the_problem_and_the_rest(demo_runs_copy, monkeypatch):
    (demo_runs_copy / "detection-scratch" / "metrics.json").write_text("{ not json")
    at = open_page(PAGES[0], demo_runs_copy, monkeypatch)
    assert any("detection-scratch" in w.value and "metrics.json is unreadable" in w.value for w in at.warning)
    assert len(at.table[0].value) == len(RUN_IDS)
    assert "no validation figure for detection-scratch" in texts(at)


def test_histories_draw_a_chart_per_metric_and_presets_narrow_the_runs(demo_runs, monkeypatch):
    at = open_page(PAGES[1], demo_runs, monkeypatch)
    expected = history_keys([r.history for r in list_runs(demo_runs)])
    assert len(at.get("plotly_chart")) == len(expected) >= 4
    assert at.get("download_button")
    at.selectbox(key="hist_runs_preset").select("pretrained vs scratch · segmentation").run()
    assert not at.exception
    assert at.pills(key="hist_runs").value == ["segmentation-pretrained", "segmentation-scratch"]
    assert len(at.get("plotly_chart")) == 3  # total, mask loss, mask accuracy


def test_compare_shows_both_runs_on_test_images_without_head_boxes(demo_runs, monkeypatch):
    at = open_page(PAGES[2], demo_runs, monkeypatch)
    at.selectbox(key="cmp_preset").select("single-task vs multi-task · labels and boxes").run()
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == (
        "detection-pretrained", "multitask-pretrained")
    assert len(at.image) == 2 * at.slider(key="cmp_count").value
    assert "no head box in the test split" in texts(at)
    at.radio(key="cmp_mode").set_value("where the two runs disagree most").run()
    assert not at.exception and len(at.image) == 2 * at.slider(key="cmp_count").value
    assert "mask IoU" in texts(at) or "box IoU" in texts(at) or "no head box" in texts(at)


def test_compare_offers_the_synthetic_source_when_the_runs_data_is_gone(demo_runs_copy, monkeypatch):
    for run_id in RUN_IDS:
        config_path = demo_runs_copy / run_id / "config.json"
        config = json.loads(config_path.read_text())
        config["settings"].update(dataset="folder", data_dir=str(demo_runs_copy / "no-such-folder"))
        config_path.write_text(json.dumps(config))
    at = open_page(PAGES[2], demo_runs_copy, monkeypatch)
    assert len(at.error) == 1 and "is not an Oxford-IIIT Pet folder" in at.error[0].value
    at.toggle(key="cmp_synthetic").set_value(True).run()
    assert not at.exception and len(at.image) == 2 * at.slider(key="cmp_count").value


def _png(mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_live_runs_every_model_on_an_example_and_on_an_upload(demo_runs, monkeypatch):
    at = open_page(PAGES[3], demo_runs, monkeypatch)
    thumbnails = len(at.image)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception and len(at.image) == thumbnails + len(RUN_IDS)
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    at.file_uploader[0].set_value(("pet.png", _png("RGBA"), "image/png")).run()
    assert not at.exception and "transparent areas shown on white" in texts(at)
    assert "**pet\\.png** · 64 × 48 px" in texts(at)  # the name escaped: shown as text


def test_reruns_keep_the_models_compiled(demo_runs, monkeypatch):
    """Streamlit clears Keras' session after each run, which would throw away TensorFlow's
    compiled kernels of every cached model (about a second per EfficientNetB3 per new photo):
    once a model is loaded, no rerun may clear the kernel cache."""
    from tensorflow.python.eager import context

    at = open_page(PAGES[3], demo_runs, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()  # loads the models
    clears = []
    original = context.Context.clear_kernel_cache
    monkeypatch.setattr(context.Context, "clear_kernel_cache", lambda self: (clears.append(1), original(self)))
    at.button(key=f"live_example_{at.get('button')[1].label}").click().run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    assert clears == []


def test_live_answers_a_broken_upload_in_one_line(demo_runs, monkeypatch):
    at = open_page(PAGES[3], demo_runs, monkeypatch)
    at.file_uploader[0].set_value(("cat.jpg", b"not a picture at all", "image/jpeg")).run()
    assert not at.exception
    assert [_rendered(e.value) for e in at.error] == [
        "<p>cat.jpg is not an image this app can read (JPEG, PNG, GIF, WebP, BMP, TIFF).</p>\n"]


def test_live_with_a_damaged_model_gives_one_line_and_runs_the_others(demo_runs_copy, monkeypatch):
    (demo_runs_copy / "segmentation-scratch" / "model.keras").write_bytes(b"PK\x03\x04 broken zip")
    at = open_page(PAGES[3], demo_runs_copy, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception
    assert len(at.error) == 1
    assert _rendered(at.error[0].value).startswith("<p>segmentation-scratch: model.keras cannot be loaded")
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS) - 1


def test_dataset_browses_the_runs_source_and_a_folder(demo_runs, pets_folder, monkeypatch):
    at = open_page(PAGES[4], demo_runs, monkeypatch)
    assert len(at.image) == at.slider(key="data_count").value
    assert len(at.get("plotly_chart")) == 1
    at.radio(key="data_source").set_value("folder").run()
    at.text_input(key="data_folder").set_value(str(pets_folder.root)).run()
    assert not at.exception and "Oxford-IIIT Pet folder" in texts(at)
    assert len(at.image) == at.slider(key="data_count").value
    at.selectbox(key="data_breed").select(5).run()  # Bengal
    assert {c.value.split(" ·")[0] for c in at.caption if "Bengal" in c.value} == {"Bengal"}


def test_dataset_says_why_oxford_iiit_pet_is_unavailable(tmp_path, monkeypatch):
    from labcore import examples

    monkeypatch.setattr(examples, "tfds_prepared", lambda data_dir=None: False)
    at = open_page(PAGES[4], tmp_path, monkeypatch)
    at.radio(key="data_source").set_value("oxford_iiit_pet").run()
    assert not at.exception
    assert len(at.error) == 1 and "oxford_iiit_pet is not prepared" in at.error[0].value


LINKY_NAME = "![x](http://127.0.0.1/x.png) [a](javascript:alert(1)).png"


def _rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer (as the browser's) makes of a markdown string."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a dependency of rich) is not installed")
    return markdown_it.MarkdownIt("commonmark").render(markdown)


def test_live_shows_an_uploaded_file_name_as_text_not_as_markdown(demo_runs, monkeypatch):
    at = open_page(PAGES[3], demo_runs, monkeypatch)
    at.file_uploader[0].set_value((LINKY_NAME, _png(), "image/png")).run()
    assert not at.exception
    header = next(m.value for m in at.markdown if "64 × 48 px" in m.value)
    html = _rendered(header)
    assert "<img" not in html and "<a " not in html
    assert LINKY_NAME in html
    at.file_uploader[0].set_value((LINKY_NAME, b"not a picture", "image/png")).run()
    html = _rendered(at.error[0].value)
    assert "<img" not in html and "<a " not in html
    assert html.startswith(f"<p>{LINKY_NAME} is not an image")


def test_moving_the_opacity_slider_runs_no_model(demo_runs, monkeypatch):
    from labcore.inference import Predictor

    at = open_page(PAGES[3], demo_runs, monkeypatch)
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    calls = []
    original = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, image: (calls.append(self.run_id), original(self, image))[1])
    at.slider(key="live_opacity").set_value(0.8).run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    assert calls == []
    other = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(other, format="PNG")
    at.file_uploader[0].set_value(("light.png", other.getvalue(), "image/png")).run()
    assert sorted(calls) == sorted(RUN_IDS)  # a new photo: each model once
