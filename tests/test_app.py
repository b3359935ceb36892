"""The Streamlit app, page by page, through streamlit.testing's AppTest: against the tiny demo
store, an empty store and damaged runs. No page may raise; each must show what it is for."""
import io
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from labcore.plots import history_keys
from labcore.report import answers
from labcore.runs import RUNS_DIR_ENV, list_runs
from labcore.settings import RUN_IDS

ROOT = Path(__file__).resolve().parents[1]

PAGES = ["app_pages/1_overview.py", "app_pages/2_histories.py", "app_pages/3_compare.py",
         "app_pages/4_live.py", "app_pages/5_dataset.py", "app_pages/6_breeds.py"]
TIMEOUT = 180  # loading six models on a slow 2-core CPU


def open_page(page: str, runs_root, monkeypatch, experiment: str | None = None) -> AppTest:
    """The app served on `runs_root`, at `page`, with `experiment` picked in the sidebar."""
    monkeypatch.setenv(RUNS_DIR_ENV, str(runs_root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    if experiment is not None:
        at.sidebar.selectbox(key="experiment").select(experiment).run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(markdown: str) -> str:
    """Markdown with its backslash escapes undone: the characters a reader sees (ui.escape
    escapes every punctuation mark of paths, names and messages)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "code", "subheader", "title")
    return "\n".join(shown(str(e.value)) for kind in kinds for e in at.get(kind))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_with_no_runs_says_how_to_make_them(page, tmp_path, monkeypatch):
    root = tmp_path / "nothing here, 'yet'"  # the command shown must keep it one word
    at = open_page(page, root, monkeypatch)
    assert ["python", "train.py", "--profile", "demo", "--runs-dir", str(root)] in [
        shlex.split(c.value) for c in at.code]
    assert "No runs in" in texts(at)


def test_overview_has_a_row_per_run_the_report_and_three_answers(demo_store, monkeypatch):
    at = open_page(PAGES[0], demo_store, monkeypatch)
    runs_table, report = at.table[0].value, at.table[1].value
    assert len(runs_table) == len(RUN_IDS)
    assert "detection-pretrained (synthetic-pretext)" in set(runs_table["run"])
    assert {"label accuracy", "box MAE", "mask pixel accuracy"} <= set(runs_table.columns)
    assert {"report pretrained", "ours pretrained", "report scratch", "ours scratch"} <= set(report.columns)
    shown = texts(at)
    assert all(f"Q{n}." in shown for n in (1, 2, 3))
    for answer in answers(list_runs(demo_store / "demo")):  # every point of each answer is on the page
        assert all(f"- {line}" in shown for line in answer.lines), answer.question
    # Q3 has all it needs: a verdict for each start, not a missing-run note.
    assert len(re.findall(r"^- \*\*(pretrained|scratch): (not )?as good\*\* — ", shown, re.MULTILINE)) == 2


def test_overview_with_a_corrupt_metrics_file_shows_the_problem_and_the_rest(demo_runs_copy, monkeypatch):
    (demo_runs_copy / "detection-scratch" / "metrics.json").write_text("{ not json")
    at = open_page(PAGES[0], demo_runs_copy.parent, monkeypatch)
    assert any("detection-scratch" in w.value and "metrics.json is unreadable" in w.value for w in at.warning)
    assert len(at.table[0].value) == len(RUN_IDS)
    assert "no validation figure for detection-scratch" in texts(at)


def test_histories_draw_a_chart_per_metric_and_presets_narrow_the_runs(demo_store, demo_runs, monkeypatch):
    at = open_page(PAGES[1], demo_store, monkeypatch)
    expected = history_keys([r.history for r in list_runs(demo_runs)])
    assert len(at.get("plotly_chart")) == len(expected) >= 4
    assert at.get("download_button")
    at.selectbox(key="hist_runs_preset").select("pretrained vs scratch · segmentation").run()
    assert not at.exception
    assert at.pills(key="hist_runs").value == ["demo/segmentation-pretrained", "demo/segmentation-scratch"]
    assert len(at.get("plotly_chart")) == 3  # total, mask loss, mask accuracy


def test_compare_shows_both_runs_on_test_images_without_head_boxes(demo_store, monkeypatch):
    at = open_page(PAGES[2], demo_store, monkeypatch)
    at.selectbox(key="cmp_preset").select("single-task vs multi-task · labels and boxes").run()
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == (
        "demo/detection-pretrained", "demo/multitask-pretrained")
    assert len(at.image) == 2 * at.slider(key="cmp_count").value
    assert "no head box in the test split" in texts(at)
    at.radio(key="cmp_mode").set_value("where the two runs disagree most").run()
    assert not at.exception and len(at.image) == 2 * at.slider(key="cmp_count").value
    # Each image shows the multi-task run's mask IoU (the detection run has no mask head).
    mask_scores = [m.value for m in at.markdown if m.value.startswith("mask IoU **")]
    assert len(mask_scores) == at.slider(key="cmp_count").value


def test_pages_show_the_stored_test_images_when_the_data_is_gone_and_the_way_out_without_them(
        demo_runs_copy, monkeypatch):
    for path in [demo_runs_copy / "experiment.json", *(demo_runs_copy / r / "config.json" for r in RUN_IDS)]:
        config = json.loads(path.read_text())
        config["settings"].update(dataset="folder", data_dir=str(demo_runs_copy / "no-such-folder"))
        path.write_text(json.dumps(config))
    stored = len(json.loads((demo_runs_copy / "showcase" / "showcase.json").read_text())["items"])
    assert stored == 37  # the tiny demo's whole test split: one image per breed
    at = open_page(PAGES[2], demo_runs_copy.parent, monkeypatch)
    assert not at.error and not at.toggle(key="cmp_gradcam").value
    assert "cmp_synthetic" not in [t.key for t in at.toggle]  # never another source than the runs learned
    assert "the data is not on this machine: the 37 test images stored with the experiment" in texts(at)
    assert len(at.image) == 2 * at.slider(key="cmp_count").value
    at.switch_page(PAGES[3]).run()
    assert not at.error and "the 37 test images stored with the experiment" in texts(at)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    at.switch_page(PAGES[4]).run()
    assert not at.error and at.selectbox(key="data_source").value == "showcase"
    assert len(at.image) == at.slider(key="data_count").value

    shutil.rmtree(demo_runs_copy / "showcase")
    for page in PAGES[2:5]:
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        [info] = [shown(i.value) for i in at.info if "not on this machine" in i.value]
        assert "no test images are stored with it" in info and "retrain" in info
        assert "python -m labcore.showcase --experiment demo" in "\n".join(c.value for c in at.code)
    at.switch_page(PAGES[3]).run()
    assert len(at.get("file_uploader")) == 1  # an upload always works


def _png(mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_live_runs_every_model_on_an_example_and_on_an_upload(demo_store, monkeypatch):
    at = open_page(PAGES[3], demo_store, monkeypatch)
    thumbnails = len(at.image)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception and len(at.image) == thumbnails + len(RUN_IDS)
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    at.file_uploader[0].set_value(("pet.png", _png("RGBA"), "image/png")).run()
    assert not at.exception and "transparent areas shown on white" in texts(at)
    assert any("**pet\\.png** · 64 × 48 px" in m.value for m in at.markdown)  # the name escaped: shown as text


def test_reruns_keep_the_models_compiled(demo_runs, monkeypatch):
    """Streamlit clears Keras' session after each run, which would throw away TensorFlow's
    compiled kernels of every cached model (about a second per EfficientNetB3 per new photo):
    once a model is loaded, no rerun may clear the kernel cache."""
    from tensorflow.python.eager import context

    at = open_page(PAGES[3], demo_runs.parent, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()  # loads the models
    clears = []
    original = context.Context.clear_kernel_cache
    monkeypatch.setattr(context.Context, "clear_kernel_cache", lambda self: (clears.append(1), original(self)))
    at.button(key=f"live_example_{at.get('button')[1].label}").click().run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    assert clears == []


def test_live_answers_a_broken_upload_in_one_line(demo_store, monkeypatch):
    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.file_uploader[0].set_value(("cat.jpg", b"not a picture at all", "image/jpeg")).run()
    assert not at.exception
    assert [_rendered(e.value) for e in at.error] == [
        "<p>cat.jpg is not an image this app can read (JPEG, PNG, GIF, WebP, BMP, TIFF).</p>\n"]


def test_live_with_a_damaged_model_gives_one_line_and_runs_the_others(demo_runs_copy, monkeypatch):
    (demo_runs_copy / "segmentation-scratch" / "model.keras").write_bytes(b"PK\x03\x04 broken zip")
    at = open_page(PAGES[3], demo_runs_copy.parent, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception
    assert len(at.error) == 1
    assert _rendered(at.error[0].value).startswith("<p>segmentation-scratch: model.keras cannot be loaded")
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS) - 1


def test_dataset_browses_the_experiments_data_and_a_folder_it_was_trained_on(two_experiments, monkeypatch):
    at = open_page(PAGES[4], two_experiments, monkeypatch, experiment="demo")
    picker = at.selectbox(key="data_source")
    assert picker.value.startswith("synthetic|")  # the experiment's own data comes first
    assert len(at.image) == at.slider(key="data_count").value
    assert len(at.get("plotly_chart")) == 1
    folder = str((two_experiments.parent / "pets").resolve())
    assert f"photos in {folder}" in picker.options  # trained on by `photos`: offered, never typed
    at.selectbox(key="data_source").select(f"folder|{folder}|None|42").run()
    assert not at.exception and "Oxford-IIIT Pet folder" in texts(at)
    assert len(at.image) == at.slider(key="data_count").value
    at.selectbox(key="data_breed").select(5).run()  # Bengal
    assert {c.value.split(" ·")[0] for c in at.caption if "Bengal" in c.value} == {"Bengal"}


def test_dataset_says_why_oxford_iiit_pet_is_unavailable(tmp_path, monkeypatch):
    from labcore import examples

    monkeypatch.setattr(examples, "tfds_prepared", lambda data_dir=None: False)
    at = open_page(PAGES[4], tmp_path, monkeypatch)
    at.selectbox(key="data_source").select("oxford_iiit_pet|None|None|42").run()
    assert not at.exception
    assert len(at.error) == 1 and "oxford_iiit_pet is not prepared" in shown(at.error[0].value)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_lets_a_visitor_type_a_path(page, two_experiments, monkeypatch):
    at = open_page(page, two_experiments, monkeypatch)
    assert len(at.text_input) == 0 and len(at.get("text_area")) == 0
    assert len(at.sidebar.selectbox) == 1  # the experiment list, the sidebar's one control


def test_switching_experiments_changes_what_the_overview_says(two_experiments, monkeypatch):
    at = open_page(PAGES[0], two_experiments, monkeypatch, experiment="demo")
    assert len(at.table[0].value) == len(RUN_IDS)
    assert "Experiment **demo**: drawn pets (synthetic)" in texts(at)
    [warning] = [w.value for w in at.warning if "Not comparable" in w.value]
    assert "trained on drawn pets, not photos" in warning and "32 px images, not 224" in warning
    assert "Answered on experiment **demo**: drawn pets (synthetic)" in texts(at)

    at.sidebar.selectbox(key="experiment").select("photos").run()
    assert not at.exception
    assert list(at.table[0].value["run"]) == ["detection-scratch", "segmentation-scratch"]
    assert "Experiment **photos**: Oxford-IIIT Pet photos (folder)" in texts(at)
    [warning] = [w.value for w in at.warning if "Not comparable" in w.value]
    assert "18 of the dataset's 3,680 trainval images" in warning and "drawn pets" not in warning
    assert "python train.py --profile quick" in texts(at)  # how to train the four runs it lacks
    assert at.query_params["experiment"] in ("photos", ["photos"])  # a link keeps the choice


def test_live_warns_about_models_that_learned_drawn_pets_and_shows_the_experiments_own_examples(
        two_experiments, monkeypatch):
    at = open_page(PAGES[3], two_experiments, monkeypatch, experiment="demo")
    demo_examples = [b.label for b in at.get("button")]
    assert demo_examples and all(name.startswith("test ") for name in demo_examples)
    at.button(key=f"live_example_{demo_examples[0]}").click().run()
    assert any("learned drawn pets: their guess on a real photo means nothing" in w.value for w in at.warning)
    assert sum("learned drawn pets, not photos" in c.value for c in at.caption) == len(RUN_IDS)

    at.sidebar.selectbox(key="experiment").select("photos").run()
    photo_examples = [b.label for b in at.get("button")]
    assert photo_examples != demo_examples
    assert {name.split(": ")[1] for name in photo_examples} <= {"Abyssinian", "American Bulldog", "Bengal"}
    at.button(key=f"live_example_{photo_examples[0]}").click().run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == 2
    assert not any("drawn pets" in w.value for w in at.warning)


def test_compare_puts_the_same_run_of_two_experiments_side_by_side(two_experiments, monkeypatch):
    at = open_page(PAGES[2], two_experiments, monkeypatch, experiment="photos")
    at.toggle(key="cmp_across").set_value(True).run()
    at.selectbox(key="cmp_a").select("photos/detection-scratch").run()
    at.selectbox(key="cmp_b").select("demo/detection-scratch").run()
    assert not at.exception
    assert len(at.image) == 2 * at.slider(key="cmp_count").value
    shown = texts(at)
    assert "**photos · detection-scratch**" in shown and "**demo · detection-scratch**" in shown
    assert "both predict on the test images of photos · detection-scratch's data" in shown
    assert "Experiment **demo**: drawn pets (synthetic)" in shown  # the other run's provenance too


def test_an_older_flat_store_opens_as_one_experiment(demo_runs, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(demo_runs, tmp_path / "lab")
    (tmp_path / "lab" / "experiment.json").unlink()  # stores from before experiments had none
    at = open_page(PAGES[0], tmp_path / "lab", monkeypatch)
    assert at.sidebar.selectbox(key="experiment").options == [
        "lab (older layout) — drawn pets, 32 px, 2 epochs, synthetic-pretext weights, "
        + at.sidebar.selectbox(key="experiment").options[0].rsplit(", ", 1)[1]]
    assert len(at.table[0].value) == len(RUN_IDS)


def test_overview_offers_the_lab_as_one_html_file(demo_store, monkeypatch):
    at = open_page(PAGES[0], demo_store, monkeypatch)
    assert [b.label for b in at.get("download_button")] == ["Download the lab as one HTML file"]


def test_compare_draws_grad_cam_for_breed_heads_only(demo_store, monkeypatch):
    at = open_page(PAGES[2], demo_store, monkeypatch)
    at.selectbox(key="cmp_preset").select("single-task vs multi-task · masks").run()
    count = at.slider(key="cmp_count").value
    at.toggle(key="cmp_gradcam").set_value(True).run()
    assert not at.exception
    # segmentation-pretrained has no breed head: heat maps only for the multitask run.
    assert len(at.image) == 2 * count + count
    cams = [c for image in at.image for c in image.captions if c.startswith("Grad-CAM of")]
    assert len(cams) == count and all(c.startswith("Grad-CAM of multitask-pretrained's top breed") for c in cams)
    assert all(c.endswith(" ms") for c in cams)
    at.selectbox(key="cmp_preset").select("pretrained vs scratch · segmentation").run()
    assert not at.exception and not [t for t in at.toggle if t.key == "cmp_gradcam"]


def test_breeds_page_shows_both_runs_and_says_retrain_for_old_runs(demo_runs_copy, monkeypatch):
    (demo_runs_copy / "multitask-scratch" / "confusion.json").unlink()
    at = open_page(PAGES[5], demo_runs_copy.parent, monkeypatch)
    assert (at.selectbox(key="breeds_a").value, at.selectbox(key="breeds_b").value) == (
        "demo/detection-pretrained", "demo/detection-scratch")
    assert not any(o.startswith("segmentation") for o in at.selectbox(key="breeds_a").options)
    assert len(at.get("plotly_chart")) == 4  # bars and heat map, per run
    assert {m.label for m in at.metric} == {"accuracy", "cats", "dogs", "cat vs dog"}
    assert "most confused pairs" in texts(at)
    at.selectbox(key="breeds_preset").select("pretrained vs scratch · multitask").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert "retrain to see this" in texts(at)


LINKY_NAME = "![x](http://127.0.0.1/x.png) [a](javascript:alert(1)).png"


def _rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer (as the browser's) makes of a markdown string."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a dependency of rich) is not installed")
    return markdown_it.MarkdownIt("commonmark").render(markdown)


def test_live_shows_an_uploaded_file_name_as_text_not_as_markdown(demo_store, monkeypatch):
    at = open_page(PAGES[3], demo_store, monkeypatch)
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


def test_moving_the_opacity_slider_runs_no_model(demo_store, monkeypatch):
    from labcore.inference import Predictor

    at = open_page(PAGES[3], demo_store, monkeypatch)
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

def test_live_draws_grad_cam_under_each_breed_head_only(demo_store, monkeypatch):
    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    assert len(at.image) == len(RUN_IDS)
    at.toggle(key="live_gradcam").set_value(True).run()
    assert not at.exception
    cams = [c for image in at.image for c in image.captions if c.startswith("Grad-CAM of")]
    breed_heads = [r for r in RUN_IDS if not r.startswith("segmentation")]
    assert sorted(c.split("'s top breed")[0].removeprefix("Grad-CAM of ") for c in cams) == sorted(breed_heads)
    assert all(c.endswith(" ms") for c in cams) and len(at.image) == len(RUN_IDS) + len(breed_heads)
