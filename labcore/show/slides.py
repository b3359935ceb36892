"""The Present page's slides: the lab's story for a projector, from one experiment's runs.

Which slides an experiment has, their titles, which of the runs each draws are missing, and the
figures, made by the functions the other pages use (report tables and answers, curves, per-breed
bars, the data-efficiency curve): the page only lays them out. A slide whose runs are missing
says which in one line (`Slide.missing_line`) instead of drawing an empty figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import plotly.graph_objects as go

from labcore.settings import METRIC_LABELS, RUN_IDS
from labcore.show.breeds import accuracy_figure
from labcore.show.efficiency import REPORT_TRAIN_IMAGES, Sweep, report_values
from labcore.show.plots import curve_figure, efficiency_figure
from labcore.show.report import Answer, answers
from labcore.store.confusion import ConfusionUnavailable, load_confusion
from labcore.store.runs import Run

SLIDE_FIGURE_HEIGHT = 420  # a figure and a title fit a 1280 x 720 projector without scrolling
DETECTION = ("detection-pretrained", "detection-scratch")
# Each question's figure: the metric's training and validation curves of these runs.
QUESTION_FIGURES = {
    "q1": ("label_accuracy", DETECTION),
    "q2": ("mask_accuracy", ("segmentation-pretrained", "segmentation-scratch")),
    "q3": ("label_accuracy", ("multitask-pretrained", "detection-pretrained")),
}
QUESTION_TITLES = {"q1": "Q1. Does pretraining help detection?", "q2": "Q2. Does pretraining help segmentation?",
                   "q3": "Q3. One multi-task model instead of two?"}


@dataclass(frozen=True)
class Slide:
    key: str
    title: str
    missing: tuple[str, ...] = ()  # runs this slide draws that the experiment lacks

    def missing_line(self) -> str | None:
        """One line naming the missing runs, or None."""
        if not self.missing:
            return None
        them = "it" if len(self.missing) == 1 else "them"
        return f"Not in this experiment: {', '.join(self.missing)} — train {them} to see this slide whole."


def slides_for(runs: Sequence[Run], sweep: Sweep | None) -> list[Slide]:
    """The slides of an experiment, in order: title, the runs beside the report, Q1 to Q3, per
    breed, Grad-CAM, data efficiency (only in a sweep), "Your turn" and the class board."""
    have = {r.run_id for r in runs}
    lacking = lambda ids: tuple(i for i in ids if i not in have)  # noqa: E731
    question_needs = {key: lacking(ids) for key, (_, ids) in QUESTION_FIGURES.items()}
    shown = [Slide("title", "Transfer learning on Oxford-IIIT Pet"),
             Slide("report", "Six runs beside the report", lacking(RUN_IDS)),
             *(Slide(key, QUESTION_TITLES[key], question_needs[key]) for key in QUESTION_FIGURES),
             Slide("breeds", "Which breeds? Pretrained against scratch", lacking(DETECTION)),
             Slide("gradcam", "Where did the breed heads look?", lacking(DETECTION))]
    if sweep is not None:
        shown.append(Slide("efficiency", "When does pretraining pay?"))
    return shown + [Slide("join", "Your turn: your pet against the six models"),
                    Slide("board", "The class board")]


def slide_number(asked: str | None, count: int) -> int:
    """The slide `?slide=N` asks for (1-based), clamped to the deck; the first where unreadable."""
    try:
        number = int(str(asked))
    except ValueError:
        return 1
    return min(max(number, 1), count)


def question_answer(runs: Sequence[Run], key: str) -> Answer:
    return answers(runs)[list(QUESTION_FIGURES).index(key)]


def question_figure(runs: Sequence[Run], key: str) -> go.Figure | None:
    """The question's curves (training solid, validation dashed) for those of its runs present."""
    metric, ids = QUESTION_FIGURES[key]
    by_id = {r.run_id: r for r in runs}
    pair = [by_id[i] for i in ids if i in by_id and metric in by_id[i].history]
    if not pair:
        return None
    title = f"{METRIC_LABELS.get(metric, metric.replace('_', ' '))}: training (solid), validation (dashed)"
    figure = curve_figure(metric, [(r.label, r.history) for r in pair], title=title)
    return figure.update_layout(height=SLIDE_FIGURE_HEIGHT)


def breed_figures(runs: Sequence[Run]) -> list[tuple[str, go.Figure | str]]:
    """Per detection run present: its test split's accuracy per breed, or why there is none."""
    shown = []
    for run in (r for i in DETECTION for r in runs if r.run_id == i):
        try:
            confusion = load_confusion(run.path).get("test")
        except ConfusionUnavailable as err:
            shown.append((run.label, f"{err}."))
            continue
        if confusion is None:
            shown.append((run.label, "confusion.json has no test counts; retrain to see this."))
            continue
        title = f"{run.run_id}: {confusion.accuracy():.0%} of {confusion.total} test images"
        figure = accuracy_figure(confusion, title)
        shown.append((run.label, figure.update_layout(height=SLIDE_FIGURE_HEIGHT)))
    return shown


def efficiency_slide(sweep: Sweep) -> tuple[str, go.Figure]:
    """The sweep's reading for detection and its label-accuracy curve, pretrained against scratch."""
    lines = {init: [(p.train_images, p.value, p.hover) for p in line]
             for init, line in sweep.points("detection", "label_accuracy").items()}
    figure = efficiency_figure("detection: validation label accuracy by training images", lines,
                               report_values("detection", "label_accuracy"), REPORT_TRAIN_IMAGES)
    return sweep.reading("detection"), figure.update_layout(height=SLIDE_FIGURE_HEIGHT)
