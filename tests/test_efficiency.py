"""Data efficiency: finding the sweeps in a runs root (labcore.show.efficiency), the page that draws
them (AppTest) and the export's curve section."""
import html
import json
import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from labcore.show import export
from labcore.show.efficiency import KEY_METRICS, REPORT_TRAIN_IMAGES, find_sweeps, report_values, trend
from labcore.store.experiments import list_experiments
from labcore.store.runs import RUNS_DIR_ENV, list_runs, read_json, write_json
from labcore.settings import METRIC_LABELS, TASKS
from ui.display import escape

ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/7_efficiency.py"


def open_page(runs_root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(RUNS_DIR_ENV, str(runs_root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def stored_values(root: Path, task: str, metric: str) -> dict[str, list[tuple[int, float]]]:
    """init -> [(training images, val metric)] read straight from each run's json files."""
    out: dict[str, list[tuple[int, float]]] = {"pretrained": [], "scratch": []}
    for n in (64, 96):
        for run in list_runs(root / f"demo-n{n}"):
            if run.task == task:
                metrics = json.loads((run.path / "metrics.json").read_text())
                config = json.loads((run.path / "config.json").read_text())
                out[run.init].append((config["dataset"]["train"], metrics["val"][metric]))
    return out


def test_the_page_draws_two_lines_per_chart_with_the_runs_metrics(sweep_store, monkeypatch):
    at = open_page(sweep_store.root, monkeypatch)
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    expected = [(task, metric) for task in TASKS for metric in KEY_METRICS[task]]
    assert len(charts) == len(expected) == 6
    for spec, (task, metric) in zip(charts, expected):
        lines = {t["name"]: t for t in spec["data"] if t["mode"] == "lines+markers"}
        assert sorted(lines) == ["pretrained", "scratch"]
        for init, points in stored_values(sweep_store.root, task, metric).items():
            assert list(zip(lines[init]["x"], lines[init]["y"])) == sorted(points)
            assert len(points) == 2
            assert all(f"demo-n{n}" in text for n, text in zip((64, 96), lines[init]["text"]))  # provenance on hover
        stars = {t["name"]: t for t in spec["data"] if t["mode"] == "markers"}
        report = report_values(task, metric)
        assert {name: t["y"][0] for name, t in stars.items()} == {f"report, {i}": v for i, v in report.items()}
        assert all(t["x"] == [REPORT_TRAIN_IMAGES] for t in stars.values())
    readings = [m.value for m in at.markdown if m.value.startswith("Pretraining's lead")]
    assert len(readings) == 3
    pretrained, scratch = (dict(v) for v in stored_values(sweep_store.root, "detection", "label_accuracy").values())
    lead = {n: pretrained[n] - scratch[n] for n in pretrained}
    assert readings[0].startswith(f"Pretraining's lead in label accuracy: {lead[51]:+.2f} at 51 images, "
                                  f"{lead[77]:+.2f} at 77 (")


def test_without_a_sweep_the_page_gives_the_command_for_one(demo_store, monkeypatch):
    at = open_page(demo_store, monkeypatch)
    assert not at.get("plotly_chart")
    assert [c.value for c in at.code] == [f"python train.py --profile demo --sweep-limit 96 192 384 --runs-dir {demo_store}"]


def test_with_no_runs_at_all_the_page_says_how_to_make_them(tmp_path, monkeypatch):
    at = open_page(tmp_path / "nothing-here", monkeypatch)
    assert any("python train.py --profile demo" in c.value for c in at.code)
    assert any("No runs in" in i.value for i in at.info) and not at.get("plotly_chart")


def test_groups_hold_only_experiments_that_differ_in_limit(sweep_store, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(sweep_store.root, root)
    shutil.copytree(root / "demo-n64", root / "copy")  # the same size again, not named for it
    shutil.copytree(root / "demo-n96", root / "bigger")  # another image size: no member
    for path in [root / "bigger" / "experiment.json", *(root / "bigger").glob("*/config.json")]:
        stored = read_json(path)
        stored["settings"]["image_size"] = 64
        write_json(path, stored)
    sweeps = find_sweeps(list_experiments(root))
    assert [(s.name, [e.name for e in s.experiments], s.sizes()) for s in sweeps] == [
        ("demo", ["demo-n64", "demo-n96"], [51, 77])]


def test_the_reading_follows_the_lead():
    assert trend([(50, 0.39), (300, 0.05)]) == "it shrinks as the data grows"
    assert trend([(50, 0.05), (300, 0.30)]) == "it grows with the data"
    assert trend([(50, 0.10), (300, 0.11)]) == "about the same at every size"
    assert trend([(50, -0.03), (300, -0.22)]) == "scratch's lead grows with the data"
    assert trend([(50, 0.20)]) == "one size only"


def test_the_export_has_the_curves_for_a_sweep_and_a_note_otherwise(sweep_store, demo_store, tmp_path,
                                                                    monkeypatch):
    # Only the cheap sections: the others load models and are tested in test_export.
    monkeypatch.setattr(export, "SECTIONS", {k: export.SECTIONS[k] for k in ("runs", "efficiency")})
    sections = {}
    for root, experiment in ((sweep_store.root, "demo-n96"), (demo_store, "demo")):
        out = tmp_path / f"{experiment}.html"
        assert export.main(["--runs-dir", str(root), "--experiment", experiment, "-o", str(out)]) == 0
        sections[experiment] = out.read_text().split('<section id="efficiency">')[1].split("</section>")[0]
    curves = sections["demo-n96"]
    assert curves.count('class="plot"') == 6 and curves.count("Pretraining&#x27;s lead") == 3
    assert "demo-n64, demo-n96" in curves
    assert 'class="plot"' not in sections["demo"] and "not part of a sweep" in sections["demo"]


def _edit_json(path: Path, edit) -> None:
    data = read_json(path)
    edit(data)
    write_json(path, data)


def test_points_leave_out_runs_of_other_settings_and_values_that_are_not_numbers(sweep_store, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(sweep_store.root, root)
    larger = root / "demo-n96"
    _edit_json(larger / "detection-scratch" / "config.json", lambda c: c["settings"].update(epochs=3))  # --force'd
    _edit_json(larger / "detection-pretrained" / "metrics.json", lambda m: m["val"].update(label_accuracy=float("nan")))
    [sweep] = find_sweeps(list_experiments(root))
    accuracy = sweep.points("detection", "label_accuracy")
    assert {init: [p.experiment for p in line] for init, line in accuracy.items()} == {
        "pretrained": ["demo-n64"], "scratch": ["demo-n64"]}
    iou = sweep.points("detection", "bbox_iou")
    assert {init: [p.experiment for p in line] for init, line in iou.items()} == {
        "pretrained": ["demo-n64", "demo-n96"], "scratch": ["demo-n64"]}
    reading = sweep.reading("detection")
    assert "nan" not in reading.lower() and "in label accuracy: " in reading and "at 77" not in reading.split(";")[0]


class RecordingPage(export.Page):
    """An export page that keeps each figure it is handed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.figures = []

    def figure(self, fig) -> None:
        self.figures.append(fig)


def test_each_chart_of_the_export_s_efficiency_section_draws_its_own_metric(sweep_store):
    page = RecordingPage()
    export.efficiency_section(page, list_runs(sweep_store.root / "demo-n96"), str(sweep_store.root))
    expected = [(task, metric) for task in TASKS for metric in KEY_METRICS[task]]
    assert len(page.figures) == len(expected)
    for figure, (task, metric) in zip(page.figures, expected):
        assert figure.layout.title.text == f"{task}: val {METRIC_LABELS[metric]}"
        lines = {trace.name: sorted(zip(trace.x, trace.y)) for trace in figure.data if trace.mode == "lines+markers"}
        assert lines == {init: sorted(points) for init, points in stored_values(sweep_store.root, task, metric).items()}


def _second_sweep(root: Path, base: str) -> None:
    """Copies of demo-n64 and demo-n96 as `<base>-n64` and `<base>-n96`, trained (so their
    settings say) with another seed: a sweep of their own."""
    for n in (64, 96):
        copy = root / f"{base}-n{n}"
        shutil.copytree(root / f"demo-n{n}", copy)
        for path in [copy / "experiment.json", *copy.glob("*/config.json")]:
            _edit_json(path, lambda stored: stored["settings"].update(seed=7))


def test_the_page_opens_on_the_chosen_experiment_s_sweep_and_switches_to_another(sweep_store, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(sweep_store.root, root)
    other = "<i>other"  # a folder's name: shown as text in the caption and the charts' hover text
    _second_sweep(root, other)
    assert [s.name for s in find_sweeps(list_experiments(root))] == [other, "demo"]

    def hovered(at: AppTest) -> set[str]:
        traces = [trace for chart in at.get("plotly_chart") for trace in json.loads(chart.proto.spec)["data"]]
        return {text.split("</b>")[0] for trace in traces for text in trace.get("text") or []}

    for experiment, sweep in ((f"{other}-n96", other), ("demo-n64", "demo")):
        monkeypatch.setenv(RUNS_DIR_ENV, str(root))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.sidebar.selectbox(key="experiment").select(experiment).run()
        at.switch_page(PAGE).run()
        assert not at.exception
        picker = at.selectbox(key="efficiency_sweep")
        assert picker.options == [other, "demo"] and picker.value == [other, "demo"].index(sweep)
        assert any(c.value.startswith(f"Sweep **{escape(sweep)}**: ") for c in at.caption)
        assert hovered(at) == {f"<b>{html.escape(sweep)}-n64", f"<b>{html.escape(sweep)}-n96"}
    picker.set_value(0).run()  # from demo's sweep to the other
    assert not at.exception
    assert any(c.value.startswith(f"Sweep **{escape(other)}**: ") for c in at.caption)
    assert hovered(at) == {"<b>&lt;i&gt;other-n64", "<b>&lt;i&gt;other-n96"}
