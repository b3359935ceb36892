"""The Streamlit app, page by page, through streamlit.testing's AppTest: against the tiny demo
store, an empty store and damaged runs. No page may raise; each must show what it is for."""
import html
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

from labcore.show.plots import history_keys
from labcore.show.report import answers
from labcore.store.runs import RUNS_DIR_ENV, list_runs
from labcore.settings import RUN_IDS

ROOT = Path(__file__).resolve().parents[1]

PAGES = ["app_pages/1_overview.py", "app_pages/2_histories.py", "app_pages/3_compare.py",
         "app_pages/4_live.py", "app_pages/5_dataset.py", "app_pages/6_breeds.py", "app_pages/8_present.py"]
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
    """Markdown with its backslash escapes undone: the characters a reader sees (display.escape
    escapes every punctuation mark of paths, names and messages)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "code", "subheader", "title")
    return "\n".join(shown(str(e.value)) for kind in kinds for e in at.get(kind))


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """What the pages' download buttons hand over, by file name: the bytes, or for a button made
    on click the callable Streamlit calls then. (AppTest's media store lives for one run.)"""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import app_test

    files = {}

    class Recording(MediaFileManager):
        def add(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
            files[file_name] = path_or_data
            return super().add(path_or_data, mimetype, coordinates, file_name, is_for_static_download)

        def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
            files[file_name] = data_callable
            return super().add_deferred(data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(app_test, "MediaFileManager", Recording)
    return files


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
    assert any("detection-scratch" in shown(w.value) and "metrics.json is unreadable" in shown(w.value)
               for w in at.warning)
    assert len(at.table[0].value) == len(RUN_IDS)
    assert "no validation figure for detection-scratch" in texts(at)


def test_histories_draw_a_chart_per_metric_and_presets_narrow_the_runs(demo_store, demo_runs, monkeypatch, downloads):
    import pandas as pd

    at = open_page(PAGES[1], demo_store, monkeypatch)
    expected = history_keys([r.history for r in list_runs(demo_runs)])
    assert len(at.get("plotly_chart")) == len(expected) >= 4
    assert [b.label for b in at.get("download_button")] == ["Download these histories (CSV)"]
    # The CSV holds every run's history.json, value by value, in epoch order.
    table = pd.read_csv(io.BytesIO(downloads["histories.csv"]))
    assert list(table.columns) == ["experiment", "run", "weights", "epoch", "series", "value"]
    assert set(table["experiment"]) == {"demo"} and sorted(set(table["run"])) == sorted(RUN_IDS)
    for run_id in RUN_IDS:
        stored = json.loads((demo_runs / run_id / "history.json").read_text())
        config = json.loads((demo_runs / run_id / "config.json").read_text())
        rows = table[table["run"] == run_id]
        assert set(rows["weights"]) == {config["weights"]}
        got = {series: list(part.sort_values("epoch")["value"]) for series, part in rows.groupby("series")}
        assert got.keys() == stored.keys(), run_id
        for series, values in stored.items():
            assert got[series] == pytest.approx(values, rel=1e-12), (run_id, series)
            assert sorted(rows[rows["series"] == series]["epoch"]) == list(range(1, len(values) + 1))
    at.selectbox(key="hist_runs_preset").select("pretrained vs scratch · segmentation").run()
    assert not at.exception
    assert at.pills(key="hist_runs").value == ["demo/segmentation-pretrained", "demo/segmentation-scratch"]
    assert len(at.get("plotly_chart")) == 3  # total, mask loss, mask accuracy
    assert sorted(set(pd.read_csv(io.BytesIO(downloads["histories.csv"]))["run"])) == [
        "segmentation-pretrained", "segmentation-scratch"]  # the CSV holds the runs shown


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
        assert "python -m labcore.store.showcase --experiment demo" in "\n".join(c.value for c in at.code)
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
        "<p>cat.jpg is not an image this app can read (JPEG, PNG, WebP, GIF or BMP).</p>\n"]


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
    at.selectbox(key="data_breed").select(5).run()  # Bengal: the six trainval Bengals, nothing else
    assert not at.exception and image_breeds(at) == ["Bengal"] * 6 and len(at.image) == 6
    at.radio(key="data_split").set_value("test").run()
    assert not at.exception and image_breeds(at) == ["Bengal"] * 2 and len(at.image) == 2
    at.selectbox(key="data_breed").select(None).run()  # every test image: two of each breed
    assert sorted(image_breeds(at)) == sorted(["Abyssinian", "American Bulldog", "Bengal"] * 2)
    assert len(at.image) == 6 and at.slider(key="data_count").value == 8


def image_breeds(at: AppTest) -> list[str]:
    """The breed under each picture of the Dataset page, in page order."""
    from labcore.settings import BREEDS, breed_name

    names = {breed_name(k) for k in range(len(BREEDS))}
    return [c.value.split(" ·")[0] for c in at.caption if c.value.split(" ·")[0] in names]


def test_dataset_says_why_oxford_iiit_pet_is_unavailable(tmp_path, monkeypatch):
    from labcore.data import sources

    monkeypatch.setattr(sources, "tfds_prepared", lambda data_dir=None: False)
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
    [warning] = [shown(w.value) for w in at.warning if "Not comparable" in w.value]
    assert "trained on drawn pets, not photos" in warning and "32 px images, not 224" in warning
    assert "Answered on experiment **demo**: drawn pets (synthetic)" in texts(at)

    at.sidebar.selectbox(key="experiment").select("photos").run()
    assert not at.exception
    assert list(at.table[0].value["run"]) == ["detection-scratch", "segmentation-scratch"]
    assert "Experiment **photos**: Oxford-IIIT Pet photos (folder)" in texts(at)
    [warning] = [shown(w.value) for w in at.warning if "Not comparable" in w.value]
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


def test_overview_offers_the_lab_as_one_html_file(demo_store, demo_runs, monkeypatch, downloads):
    at = open_page(PAGES[0], demo_store, monkeypatch)
    assert [b.label for b in at.get("download_button")] == ["Download the lab as one HTML file"]
    page = downloads["lab.html"]().decode("utf-8")  # what a click hands over
    assert page.startswith("<!DOCTYPE html>") and "<title>Transfer learning on Oxford-IIIT Pet: demo</title>" in page
    assert "Experiment <b>demo</b>: drawn pets (synthetic)" in page
    runs_table = page[page.index('<section id="provenance">'):page.index('<section id="runs">')]
    assert re.findall(r"<tr><td>([a-z-]+)</td>", runs_table) == list(RUN_IDS)
    for run_id in RUN_IDS:  # each run's own figures, as metrics.json has them
        accuracy = json.loads((demo_runs / run_id / "metrics.json").read_text())["test"].get("label_accuracy")
        if accuracy is not None:
            assert f"<td>{accuracy:.4g}</td>" in page, run_id


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
    assert [m.label for m in at.metric] == ["accuracy", "cats", "dogs", "cat vs dog"] * 2
    assert "most confused pairs" in texts(at)
    for split in ("test", "val"):
        if split == "val":
            at.radio(key="breeds_split").set_value("val").run()
            assert not at.exception
        shown = [m.value for m in at.metric]
        assert shown == breed_metrics(demo_runs_copy / "detection-pretrained", split) + breed_metrics(
            demo_runs_copy / "detection-scratch", split), split
    at.selectbox(key="breeds_preset").select("pretrained vs scratch · multitask").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert "retrain to see this" in texts(at)


def breed_metrics(run: Path, split: str) -> list[str]:
    """The four figures the per-breed page should show for a run: from its confusion.json counts
    (the accuracy also from metrics.json, which training computed on its own)."""
    record = json.loads((run / "confusion.json").read_text())
    counts = np.array(record["splits"][split])
    cats = np.array([name[0].isupper() for name in record["classes"]])  # the dataset's naming rule
    total = counts.sum()
    accuracy = np.trace(counts) / total
    assert accuracy == pytest.approx(json.loads((run / "metrics.json").read_text())[split]["label_accuracy"])
    cat_rows, dog_rows = counts[cats], counts[~cats]
    same_species = counts[np.ix_(cats, cats)].sum() + counts[np.ix_(~cats, ~cats)].sum()
    return [f"{accuracy:.1%}", f"{cat_rows[:, cats].diagonal().sum() / cat_rows.sum():.1%}",
            f"{dog_rows[:, ~cats].diagonal().sum() / dog_rows.sum():.1%}", f"{same_species / total:.1%}"]


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
    from labcore.show.inference import Predictor

    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    calls = []
    original = Predictor.submit  # the page's way to ask a model (its shared queue)
    monkeypatch.setattr(Predictor, "submit", lambda self, image: (calls.append(self.run_id), original(self, image))[1])
    at.slider(key="live_opacity").set_value(0.8).run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    assert calls == []
    other = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(other, format="PNG")
    at.file_uploader[0].set_value(("light.png", other.getvalue(), "image/png")).run()
    assert sorted(calls) == sorted(RUN_IDS)  # a new photo: each model once

def test_the_first_page_warms_the_experiments_models_for_the_live_page(demo_store, monkeypatch):
    """Opening any page loads the chosen experiment's models in a background thread, so the
    first upload loads none itself."""
    import threading

    import streamlit as st

    from labcore.show.inference import Predictor

    def join_warming() -> None:
        for thread in [t for t in threading.enumerate() if t.name == "warm-models"]:
            thread.join(TIMEOUT)

    join_warming()  # an earlier test's warming, still loading, would load into the cleared cache
    st.cache_resource.clear()  # earlier tests in this process may have loaded them already
    loads: list[str] = []
    original = Predictor.from_run.__func__
    monkeypatch.setattr(Predictor, "from_run", classmethod(lambda cls, run: (loads.append(run.run_id), original(cls, run))[1]))
    at = open_page(PAGES[0], demo_store, monkeypatch)
    join_warming()
    assert sorted(loads) == sorted(RUN_IDS)
    at.switch_page(PAGES[3]).run()
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    assert not at.exception and len(at.image) == len(RUN_IDS)
    assert sorted(loads) == sorted(RUN_IDS)  # the upload loaded no model of its own


def test_live_draws_grad_cam_under_each_breed_head_only(demo_store, monkeypatch):
    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    assert len(at.image) == len(RUN_IDS)
    at.toggle(key="live_gradcam").set_value(True).run()
    assert not at.exception
    cams = [c for image in at.image for c in image.captions if c.startswith("Grad-CAM of")]
    breed_heads = [r for r in RUN_IDS if not r.startswith("segmentation")]
    assert sorted(c.split("'s top breed")[0].removeprefix("Grad-CAM of ") for c in cams) == sorted(breed_heads)
    # Each map gives its time; a grey photo may leave a map empty, and then its caption says so.
    assert all(re.fullmatch(r".* · \d+ ms( · no heat: .*)?", c) for c in cams), cams
    assert len(at.image) == len(RUN_IDS) + len(breed_heads)


def image_titles(at: AppTest) -> list[str]:
    """Compare's heading over each test image: "Test image N: Breed"."""
    return [h.value for h in at.subheader if h.value.startswith("Test image ")]


def test_compare_picks_anew_by_breed_and_a_run_against_itself(demo_store, monkeypatch):
    at = open_page(PAGES[2], demo_store, monkeypatch)
    count = at.slider(key="cmp_count").value
    first = image_titles(at)
    assert len(first) == count
    [new_pick] = [b for b in at.button if b.label == "New pick"]
    new_pick.click().run()
    again = image_titles(at)
    assert not at.exception and len(again) == count and again != first  # another draw of the pool

    at.radio(key="cmp_mode").set_value("by breed").run()
    assert not at.exception
    names = at.selectbox(key="cmp_breed").options  # the breeds in the scored pool, by name
    assert len(names) > 1
    for index in (0, len(names) - 1):
        at.selectbox(key="cmp_breed").select_index(index).run()
        shown = image_titles(at)
        assert not at.exception and 1 <= len(shown) <= count
        assert all(title.endswith(f": {names[index]}") for title in shown), (names[index], shown)

    # Run A = Run B: one run, said so, with nothing to disagree with (so a random pick).
    at.radio(key="cmp_mode").set_value("where the two runs disagree most").run()
    at.selectbox(key="cmp_b").select(at.selectbox(key="cmp_a").value).run()
    assert not at.exception and "Pick two different runs to compare them; showing one." in texts(at)
    assert len(image_titles(at)) == count and len(at.image) == count
    assert sum(m.value.startswith("1. ") for m in at.markdown) == count  # one top-5 per image


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_live_takes_a_camera_photo_and_refuses_an_oversized_upload_in_one_line(demo_store, monkeypatch):
    from labcore.data.images import MAX_UPLOAD_MB
    from ui import presenter

    # AppTest's browser has no address: stand in for one whose page may use a camera (which
    # browsers get the toggle is tests/test_present.py's to check).
    monkeypatch.setattr(presenter, "camera_works_here", lambda: True)
    at = open_page(PAGES[3], demo_store, monkeypatch)
    assert len(at.camera_input) == 0  # the camera stays off until asked
    at.toggle(key="live_camera_on").set_value(True).run()
    assert not at.exception and len(at.camera_input) == 1
    at.camera_input[0].set_value(("shot.jpg", _jpeg(), "image/jpeg")).run()
    assert not at.exception
    assert any(m.value.startswith("**the camera photo** · 64 × 48 px") for m in at.markdown)
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    at.toggle(key="live_camera_on").set_value(False).run()
    assert not at.exception and len(at.camera_input) == 0
    assert not any("the camera photo" in m.value for m in at.markdown)

    # Streamlit's server refuses a file over server.maxUploadSize before the page sees it; the
    # page says the same in one line where one gets through (AppTest hands any size over).
    big = b"\0" * (MAX_UPLOAD_MB + 1) * 2**20
    at.file_uploader[0].set_value(("big.png", big, "image/png")).run()
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [f"big.png is {MAX_UPLOAD_MB + 1} MB; the limit is {MAX_UPLOAD_MB} MB."]
    assert sum(" ms" in c.value for c in at.caption) == 0  # no model ran on it


def test_an_uploads_bytes_are_let_go_once_decoded_and_the_page_still_shows_it(demo_store, monkeypatch):
    """Once the photo is decoded, Streamlit's store holds its file empty; the session keeps its
    name and digest, and a later run (the slider) shows the same photo and answers, asking no
    model again. A removed file is forgotten."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    from labcore.show.inference import Predictor

    stored = {}
    real_add = MemoryUploadedFileManager.add_file
    monkeypatch.setattr(MemoryUploadedFileManager, "add_file",
                        lambda self, session, file: (stored.__setitem__(file.file_id, len(file.data)),
                                                     real_add(self, session, file))[1])
    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.file_uploader[0].set_value(("grey.png", _png(), "image/png")).run()
    assert not at.exception and sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)
    [(file_id, size)] = stored.items()
    assert size == 0  # sent with its bytes, then emptied once decoded
    assert at.session_state["live_kept"]["upload"][:2] == (file_id, "grey.png")
    # As a real server does on the next run: the widget names the file, the store holds it empty
    # (AppTest would hand the bytes over again on every run).
    monkeypatch.setattr(MemoryUploadedFileManager, "add_file",
                        lambda self, session, file: real_add(self, session, file._replace(data=b"")))
    asked = []
    original = Predictor.submit
    monkeypatch.setattr(Predictor, "submit", lambda self, image: (asked.append(self.run_id), original(self, image))[1])
    at.slider(key="live_opacity").set_value(0.7).run()
    assert not at.exception and any(m.value.startswith("**grey\\.png** · 64 × 48 px") for m in at.markdown)
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS) and asked == []
    at.file_uploader[0].set_value(None).run()  # removed: back to the examples
    assert not at.exception and "upload" not in at.session_state["live_kept"]
    assert sum(" ms" in c.value for c in at.caption) == 0


def test_dataset_page_on_a_folder_opens_only_the_images_it_shows(two_experiments, monkeypatch):
    from labcore.data import sources

    opened = []
    real = sources.decode_image_file

    def recording(path):
        import tensorflow as tf

        seen = tf.py_function(lambda p: (opened.append(p.numpy().decode()), p)[1], [path], tf.string)
        seen.set_shape([])
        return real(seen)

    monkeypatch.setattr(sources, "decode_image_file", recording)
    at = open_page(PAGES[4], two_experiments, monkeypatch, experiment="photos")
    assert at.selectbox(key="data_source").value.startswith("folder|")  # the experiment's own photos
    at.slider(key="data_count").set_value(4).run()
    opened.clear()  # (opening the source checks every file once; a click must not read them again)
    at.button[0].click().run()  # Shuffle: another pick of four
    assert not at.exception and len(at.image) == 4
    assert len(opened) == 4 and len(set(opened)) == 4  # the four shown, each once, nothing else


def test_a_page_run_reads_the_runs_root_once_for_the_status_and_the_experiments(demo_store, monkeypatch):
    from labcore.store import inflight

    reads = []
    real = inflight.trainings
    monkeypatch.setattr(inflight, "trainings", lambda root: (reads.append(root), real(root))[1])
    from ui.experiments import forget_store_look

    forget_store_look()
    monkeypatch.setenv(RUNS_DIR_ENV, str(demo_store))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and len(reads) == 1  # the picker, the status and its first poll shared one look


def test_the_lab_download_uses_the_models_the_app_has_loaded(demo_store, monkeypatch, downloads):
    from labcore.show.inference import Predictor

    at = open_page(PAGES[3], demo_store, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()  # the six models loaded
    loads = []
    original = Predictor.from_run.__func__
    monkeypatch.setattr(Predictor, "from_run", classmethod(lambda cls, run: (loads.append(run.run_id), original(cls, run))[1]))
    at.switch_page(PAGES[0]).run()
    page = downloads["lab.html"]().decode("utf-8")
    assert "<section id=\"predictions\">" in page and page.count("data:image/jpeg") > 0
    assert loads == []
def test_the_uploader_offers_the_formats_the_decoder_reads(demo_store, monkeypatch):
    from labcore.data.images import UPLOAD_EXTENSIONS

    at = open_page(PAGES[3], demo_store, monkeypatch)
    assert list(at.file_uploader[0].proto.type) == [f".{ext}" for ext in UPLOAD_EXTENSIONS]
    assert not {".eps", ".ps", ".pdf"} & set(at.file_uploader[0].proto.type)


def _json_edit(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_damaged_experiment_costs_one_line_per_bad_file_and_the_good_one_beside_it_is_whole(
        demo_store, tmp_path, monkeypatch):
    """A copy of the demo with `image_size: 40000` in its configs grew the server to 20 GB while
    it warmed the models; a model with 40 breeds raised IndexError in breed_name."""
    from conftest import save_forty_breed_model
    from labcore.show.inference import Predictor

    root = tmp_path / "runs"
    shutil.copytree(demo_store / "demo", root / "demo")
    shutil.copytree(demo_store / "demo", root / "copied")
    _json_edit(root / "copied" / "experiment.json", lambda e: e["settings"].update(image_size=40000))
    for run_id in ("detection-scratch", "segmentation-scratch"):
        _json_edit(root / "copied" / run_id / "config.json", lambda c: c["settings"].update(image_size=40000))
    save_forty_breed_model(root / "copied" / "detection-pretrained" / "model.keras")
    sizes = []
    original = Predictor.__init__
    monkeypatch.setattr(Predictor, "__init__", lambda self, model, run_id, backbone, image_size: (
        sizes.append(image_size), original(self, model, run_id, backbone, image_size))[1])
    expected = [f"copied: {run_id}/config.json: settings: image_size 40000: must be a multiple of 32 from 32 to "
                "1024; the run is left out." for run_id in ("detection-scratch", "segmentation-scratch")] + [
        "copied: experiment.json: image_size 40000: must be a multiple of 32 from 32 to 1024; it is ignored."]
    for page in [*PAGES, "app_pages/7_efficiency.py"]:
        at = open_page(page, root, monkeypatch, experiment="copied")
        assert [shown(e.value) for e in at.error][:3] == expected, page
    at = open_page(PAGES[0], root, monkeypatch, experiment="copied")
    assert sorted(at.table[0].value["run"]) == sorted(
        ["detection-pretrained (synthetic-pretext)", "segmentation-pretrained (synthetic-pretext)",
         "multitask-pretrained (synthetic-pretext)", "multitask-scratch"])
    at = open_page(PAGES[3], root, monkeypatch, experiment="copied")
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert not at.exception
    assert [shown(e.value) for e in at.error][3:] == [
        "detection-pretrained: model.keras takes (32, 32, 3) and gives label (40), bbox (4), not the 32 px "
        "images and label, bbox heads its config.json describes"]
    assert sum(" ms" in c.value for c in at.caption) == 3  # the other three models of the copy answer
    assert set(sizes) == {32}  # no model was ever built, warmed or run at 40000 px

    at.sidebar.selectbox(key="experiment").select("demo").run()
    assert not at.exception and not at.error  # the good experiment beside it: whole
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()
    assert sum(" ms" in c.value for c in at.caption) == len(RUN_IDS)


CRAFTED = "x [link](javascript:alert(1)) <a href=javascript:alert(2)>y"  # a folder name: no slash in it


def test_store_text_is_shown_as_text_in_markdown_and_in_charts(demo_store, tmp_path, monkeypatch):
    """A copied store's strings (its folder's name, a data folder in a config, a history key)
    are shown as the characters they are: no link, no tag, in markdown or in Plotly's text."""
    root = tmp_path / "runs"
    shutil.copytree(demo_store / "demo", root / "demo")
    shutil.copytree(demo_store / "demo", root / CRAFTED)
    run = root / CRAFTED / "detection-scratch"
    _json_edit(run / "config.json", lambda c: c["settings"].update(
        dataset="folder", data_dir="/data/[a](http://e.invalid) <a href='http://e.invalid'>b</a>"))
    _json_edit(run / "history.json", lambda h: h.update({"<a href='http://e.invalid'>k</a>": [1.0, 2.0]}))
    at = open_page(PAGES[0], root, monkeypatch, experiment=CRAFTED)
    kinds = ("markdown", "caption", "info", "warning", "error", "subheader", "title")
    rendered = [_rendered(str(e.value)) for kind in kinds for e in at.get(kind)]
    assert not any("<a" in html or "<img" in html for html in rendered), [h for h in rendered if "<a" in h]
    words = html.unescape(re.sub(r"<[^>]+>", "", " ".join(rendered)))  # the characters a reader sees
    assert f"Experiment {CRAFTED}: drawn pets" in words
    assert "data_dir: \"/data/[a](http://e.invalid) <a href='http://e.invalid'>b</a>\" stored" in words
    assert "a series named \"<a href='http://e.invalid'>k</a>\" is not a metric name" in words

    at.switch_page(PAGES[1]).run()
    at.toggle(key="hist_runs_across").set_value(True).run()
    at.pills(key="hist_runs").set_value(["demo/detection-scratch", f"{CRAFTED}/detection-scratch"]).run()
    assert not at.exception
    options = [_rendered(option.content) for option in at.pills(key="hist_runs").proto.options]
    assert any(CRAFTED in html.unescape(option) for option in options) and not any("<a" in o for o in options)
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    names = {trace["name"] for spec in charts for trace in spec["data"]}
    assert f"{CRAFTED.replace('<', '&lt;').replace('>', '&gt;')} · detection-scratch" in names
    assert not any("<" in name for name in names)
    assert not any("<" in spec["layout"]["title"]["text"] for spec in charts)
