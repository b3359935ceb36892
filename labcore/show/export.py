"""The lab as one self-contained HTML file, to hand in or present offline.

    python -m labcore.show.export --experiment demo -o lab.html     # runs/demo/, or --runs-dir ROOT

Everything is inlined: plotly.js once, every figure as data, every picture as a data URI, so
the file opens without a network and prints one section per page.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import math
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import plotly.graph_objects as go
from PIL import Image

from labcore.show.board import Tally, plural
from labcore.show.breeds import accuracy_figure, confusion_figure
from labcore.store.confusion import ConfusionUnavailable, load_confusion
from labcore.show.efficiency import KEY_METRICS, REPORT_TRAIN_IMAGES, Sweep, find_sweeps, report_values, sweep_of
from labcore.show.plots import curve_figure, efficiency_figure, history_keys
from labcore.show.report import PRESETS, answers, overview_rows, report_rows
from labcore.store.experiments import list_experiments, load_experiment, not_comparable
from labcore.store.runs import Run, default_runs_dir
from labcore.settings import METRIC_LABELS, TASK_OUTPUTS, TASKS

EXAMPLES = 4  # test images per preset in the predictions section
PICTURE_WIDTH = 240
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
section { margin-bottom: 3em; }
h1 { font-size: 2em; } h2 { border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .8em; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: .25em .5em; text-align: left; }
th { background: #eef3f8; }
.pair { display: flex; gap: 2em; flex-wrap: wrap; }
.pair > div { flex: 1 1 45%; min-width: 320px; }
figure { display: inline-block; margin: .3em; vertical-align: top; }
figcaption { font-size: .8em; max-width: 240px; }
.note { color: #555; font-size: .9em; }
.warning { background: #fff4d6; border-left: 4px solid #e69f00; padding: .5em .8em; }
@media print {
  section { page-break-before: always; break-before: page; }
  section:first-of-type { page-break-before: auto; break-before: auto; }
  .pair > div, figure, table, .plot { break-inside: avoid; }
  body { margin: 0; max-width: none; }
}
"""


class Page:
    """Collects the HTML; the first figure carries plotly.js, the others reuse it. `load`, where
    given, is how the predictions section gets a run's model (the app: its loaded ones)."""

    def __init__(self, load: "Callable[[Run], object] | None" = None) -> None:
        self.parts: list[str] = []
        self.plotly_inlined = False
        self.load = load

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def figure(self, fig: go.Figure) -> None:
        markup = fig.to_html(full_html=False, include_plotlyjs=not self.plotly_inlined,
                             config={"displaylogo": False, "responsive": True})
        self.plotly_inlined = True
        self.add(f'<div class="plot">{markup}</div>')


def esc(value) -> str:
    return html.escape("—" if value is None else str(value))


def markdown_line(text: str) -> str:
    """The report's answers use **bold** and code spans only (fenced with as many backticks as
    they need: labcore.show.text.code_span); escape the rest."""
    return _INLINE.sub(lambda m: f"<code>{_code(m[2])}</code>" if m[1] else f"<strong>{m[3]}</strong>",
                       html.escape(text))


_INLINE = re.compile(r"(`+)(.+?)\1(?!`)|\*\*(.+?)\*\*")  # a code span (nothing inside is bold) or bold


def _code(content: str) -> str:
    """A code span's content: one space either side taken off where both are there (CommonMark)."""
    return content[1:-1] if content.startswith(" ") and content.endswith(" ") and content.strip() else content


def table(rows: Sequence[dict]) -> str:
    if not rows:
        return '<p class="note">Nothing to show.</p>'
    columns = list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value


def data_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- sections

def provenance_section(page: Page, runs: Sequence[Run], store: str) -> None:
    rows = []
    for run in runs:
        settings = run.config.get("settings", {})
        dataset = run.config.get("dataset", {})
        rows.append({"run": run.run_id, "data": dataset.get("description") or settings.get("dataset"),
                     "train / val / test": "/".join(str(dataset.get(s, "?")) for s in ("train", "val", "test")),
                     "image size": settings.get("image_size"), "epochs (max)": settings.get("epochs"),
                     "epochs run": run.epochs_run or None, "weights": run.weights,
                     "profile": settings.get("profile"), "seed": run.config.get("seed"),
                     "finished": run.config.get("finished"),
                     "tensorflow": run.config.get("versions", {}).get("tensorflow")})
    experiment = load_experiment(runs[0].path.parent)
    if experiment.settings:
        page.add(f"<p>Experiment <b>{esc(experiment.name)}</b>: {esc(experiment.provenance().sentence())}.</p>")
    page.add(f'<p class="note">Run store: <code>{esc(store)}</code>; exported '
             f'{datetime.now(timezone.utc).isoformat(timespec="seconds")}.</p>' + table(rows))


def runs_section(page: Page, runs: Sequence[Run], store: str) -> None:
    for split, name in (("val", "validation"), ("test", "test split")):
        rows = overview_rows(runs, split)
        # The run's label names its weights; columns no run has a value for are left out.
        columns = [c for c in rows[0] if c != "weights" and any(r[c] is not None for r in rows)]
        page.add(f"<h3>Metrics on {name}</h3>" + table([{c: r[c] for c in columns} for r in rows]))


def report_section(page: Page, runs: Sequence[Run], store: str) -> None:
    experiment = load_experiment(runs[0].path.parent)
    reasons = not_comparable(experiment.provenance()) if experiment.settings else []
    if reasons:
        page.add(f'<p class="warning"><b>Not comparable</b> with the report\'s numbers: {esc("; ".join(reasons))}.</p>')
    page.add(table(report_rows(runs)))
    page.add('<p class="note">~ = read off the report\'s curves. Ours come from metrics.json (box loss: '
             "the history at the best epoch). The report trained on the full dataset at its own settings; "
             "compare the direction of the gaps, not the last digits, when the data or image size differ "
             "(see Provenance).</p>")


def presets_of(runs: Sequence[Run]) -> dict[str, tuple[Run, Run]]:
    by_id = {r.run_id: r for r in runs}
    return {name: (by_id[a], by_id[b]) for name, (a, b) in PRESETS.items() if a in by_id and b in by_id}


def curves_section(page: Page, runs: Sequence[Run], store: str) -> None:
    page.add('<p class="note">Solid: training; dashed: validation; star: best epoch; triangles: the '
             "learning rate was lowered.</p>")
    for name, pair in presets_of(runs).items():
        page.add(f"<h3>{esc(name)}</h3>")
        for metric in history_keys([r.history for r in pair]):
            page.figure(curve_figure(metric, [(r.label, r.history) for r in pair], title=metric))


def predictions_section(page: Page, runs: Sequence[Run], store: str) -> None:
    from labcore.show.gallery import GalleryUnavailable, preset_examples
    from labcore.show.inference import Predictor

    page.add(f'<p class="note">The first {EXAMPLES} test images each preset\'s first run was scored on. Green: '
             "truth (mask outline, head box); red: prediction. Grad-CAM: where the breed head looked "
             "for its top breed (red = most).</p>")
    cache: dict = {}
    for name, pair in presets_of(runs).items():
        page.add(f"<h3>{esc(name)}</h3>")
        try:
            shown, caption = preset_examples(pair, EXAMPLES, PICTURE_WIDTH, cache, page.load or Predictor.from_run)
        except GalleryUnavailable as err:
            page.add(f'<p class="note">{esc(err)}</p>')
            continue
        page.add(f'<p class="note">{esc(caption)}.</p>')
        columns = []
        for run, pictures in zip(pair, shown):
            figures = "".join(f'<figure><img src="{data_uri(p.picture)}" alt="{esc(p.caption)}">'
                              f"<figcaption>{esc(p.caption)}</figcaption></figure>" for p in pictures)
            columns.append(f"<div><h4>{esc(run.label)}</h4>{figures}</div>")
        page.add(f'<div class="pair">{"".join(columns)}</div>')


def breeds_section(page: Page, runs: Sequence[Run], store: str) -> None:
    label_runs = [r for r in runs if "label" in (r.config.get("outputs") or TASK_OUTPUTS[r.task])]
    if not label_runs:
        page.add('<p class="note">No run in this store has a breed head.</p>')
    for run in label_runs:
        page.add(f"<h3>{esc(run.label)}</h3>")
        try:
            confusion = load_confusion(run.path).get("test")
        except ConfusionUnavailable as err:
            page.add(f'<p class="note">{esc(err)}</p>')
            continue
        if confusion is None:
            page.add('<p class="note">No test-split counts in confusion.json.</p>')
            continue
        split = confusion.cat_dog_accuracy()
        cats, dogs, species = (_share(split[k]) for k in ("cat_accuracy", "dog_accuracy", "species_accuracy"))
        page.add(f"<p>Breed accuracy {confusion.accuracy():.3f} over {confusion.total} images; cats "
                 f"{cats}, dogs {dogs}; cat vs dog right {species}.</p>")
        pairs = confusion.top_confused(10)
        page.add("<h4>Most confused pairs</h4>" + (
            "<ol>" + "".join(f"<li>{esc(t)} → {esc(p)}: {n}</li>" for t, p, n in pairs) + "</ol>"
            if pairs else '<p class="note">No confusions.</p>'))
        page.figure(accuracy_figure(confusion, f"{run.run_id}: accuracy per breed (test)"))
        page.figure(confusion_figure(confusion, f"{run.run_id}: confusion (test)"))


def _share(value: float) -> str:
    """A share to three places; a dash where the split holds no such image."""
    return "—" if math.isnan(value) else f"{value:.3f}"


def sweep_for(runs: Sequence[Run]) -> Sweep | None:
    """The sweep over training-set sizes the runs' experiment belongs to, if any."""
    experiment = load_experiment(runs[0].path.parent)
    return sweep_of(experiment, find_sweeps(list_experiments(experiment.path.parent)))


def efficiency_section(page: Page, runs: Sequence[Run], store: str) -> None:
    sweep = sweep_for(runs)
    if sweep is None:
        page.add('<p class="note">This experiment is not part of a sweep over training-set sizes (experiments '
                 "that differ only in <code>--limit</code>); <code>python train.py ... --sweep-limit N1 N2 ...</code> "
                 "trains one.</p>")
        return
    page.add(f"<p>Sweep <b>{esc(sweep.name)}</b>: {esc(sweep.describe())}. Stars: the report's value on the full "
             f"dataset ({REPORT_TRAIN_IMAGES:,} training images).</p>")
    for task in TASKS:
        page.add(f"<h3>{esc(task.capitalize())}</h3><p>{esc(sweep.reading(task))}</p>")
        for metric in KEY_METRICS[task]:
            lines = {init: [(p.train_images, p.value, p.hover) for p in line]
                     for init, line in sweep.points(task, metric).items()}
            page.figure(efficiency_figure(f"{task}: val {METRIC_LABELS[metric]}", lines, report_values(task, metric),
                                          REPORT_TRAIN_IMAGES))


def questions_section(page: Page, runs: Sequence[Run], store: str) -> None:
    for n, answer in enumerate(answers(runs), 1):
        items = "".join(f"<li>{markdown_line(line)}</li>" for line in answer.lines)
        page.add(f"<h3>Q{n}. {esc(answer.question)}</h3><ul>{items}</ul>")


# Section id -> (heading, what draws it), in the file's order.
SECTIONS = {
    "provenance": ("Provenance", provenance_section),
    "runs": ("The runs", runs_section),
    "report": ("The report's numbers beside ours (validation)", report_section),
    "curves": ("Training curves of the presets", curves_section),
    "predictions": ("Predictions on the same test images", predictions_section),
    "breeds": ("Per-breed results (test split)", breeds_section),
    "questions": ("The report's three questions, from these runs", questions_section),
    "efficiency": ("Data efficiency: pretrained against scratch by the number of training images", efficiency_section),
}


def board_section(page: Page, board: Tally) -> None:
    """The class board's tally (opt-in; no photos): pets, each head's accuracy, top breeds."""
    page.add(f"<p>{plural(board.pets, 'pet')} uploaded by the class; {board.labelled} with the breed their owner "
             "named. The models' answers on them, scored against those breeds (photos are not included).</p>")
    page.add(table(board.accuracy_rows()) if board.labelled else '<p class="note">No pet has a named breed.</p>')
    page.add("<h3>Each model's favourite breed across the pets</h3>" + table(board.top_breed_rows()))


def build_html(runs: Sequence[Run], title: str, store: str, load: "Callable[[Run], object] | None" = None,
               board: Tally | None = None) -> str:
    """The whole export as one HTML string: one <section> per entry of SECTIONS, and the class
    board's tally where `board` is given (the presenter's choice). `load` gives a run's
    predictor (default: loaded from its folder for this export only)."""
    page = Page(load)
    for key, (heading, draw) in SECTIONS.items():
        page.add(f'<section id="{key}"><h2>{esc(heading)}</h2>')
        draw(page, runs, store)
        page.add("</section>")
    if board is not None:
        page.add('<section id="board"><h2>The class board</h2>')
        board_section(page, board)
        page.add("</section>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{''.join(page.parts)}</body></html>")


def export_html(runs: Sequence[Run], out_path: Path | str, title: str, store: str) -> int:
    """Write the export; returns its size in bytes."""
    text = build_html(runs, title, store).encode("utf-8")
    Path(out_path).write_bytes(text)
    return len(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labcore.show.export",
                                description="Write the lab (runs, curves, predictions, per-breed results, "
                                            "the report's questions) as one HTML file that opens offline.")
    p.add_argument("--runs-dir", default=str(default_runs_dir()),
                   help="the runs root (default: $PETLAB_RUNS_DIR, else runs)")
    p.add_argument("--experiment", help="the experiment to export (default: the newest under the runs root)")
    p.add_argument("-o", "--output", default="lab.html", help="the HTML file to write (default: lab.html)")
    args = p.parse_args(argv)
    found = {e.key: e for e in list_experiments(args.runs_dir)}
    if not found:
        print(f"labcore.show.export: no experiments in {args.runs_dir}; train some with "
              "`python train.py --profile demo`", file=sys.stderr)
        return 1
    experiment = found.get(args.experiment or next(iter(found)))
    if experiment is None:
        print(f"labcore.show.export: no experiment {args.experiment!r} in {args.runs_dir}; there are: "
              f"{', '.join(found)}", file=sys.stderr)
        return 1
    runs, folder = experiment.runs, experiment.path
    if not runs:
        print(f"labcore.show.export: no finished runs in {folder}", file=sys.stderr)
        return 1
    title = f"Transfer learning on Oxford-IIIT Pet: {experiment.name}"
    try:
        size = export_html(runs, args.output, title, str(folder))
    except OSError as err:
        print(f"labcore.show.export: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({size / 2**20:.1f} MB, {len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
