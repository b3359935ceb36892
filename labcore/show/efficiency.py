"""Data efficiency: the sweeps stored under a runs root and their curves, pretrained against
scratch, by the number of training images.

A sweep is a group of experiments `<name>-n<N>` that differ only in `limit` (labcore.train.sweep
trains one); any experiments that differ only in `limit` make a group here, whatever their names.
Nothing here imports TensorFlow: the app's page reads this.
"""
from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from labcore.store.experiments import NOT_COMPARED, Experiment, epochs_text, runs_dir_words
from labcore.store.runs import Run
from labcore.settings import FULL_SPLIT_SIZES, INITS, METRIC_LABELS, PROFILES, REPORT_NUMBERS, settings_from_dict
from labcore.show.text import plotly_text

SWEEP_NAME = re.compile(r"^(?P<base>.+)-n(?P<size>[0-9]+)$")
# The validation metrics drawn per task, its main one first (the one the task is about).
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "detection": ("label_accuracy", "bbox_iou"),
    "segmentation": ("mask_pixel_accuracy",),
    "multitask": ("label_accuracy", "mask_pixel_accuracy", "bbox_iou"),
}
# The report trained on the whole trainval split less its validation share.
REPORT_TRAIN_IMAGES = round(FULL_SPLIT_SIZES["trainval"] * (1 - PROFILES["report"].val_fraction))
STEADY = 0.02  # a lead that moves less than this from the smallest size to the largest "holds"


@dataclass
class Point:
    """One run's validation metric at its experiment's training-set size."""

    experiment: str
    init: str
    value: float
    train_images: int
    hover: str  # the run's provenance, for the chart's tooltip


@dataclass
class Sweep:
    name: str
    experiments: list[Experiment]  # one per size, fewest training images first

    def sizes(self) -> list[int]:
        return [train_images(e) for e in self.experiments]

    def describe(self) -> str:
        """'demo-n96, demo-n192, demo-n384: drawn pets (synthetic); 64 px; ...; 77, 154, 307 training
        images (--limit 96, 192, 384), each size holding out 20 % of its images for validation'."""
        largest = self.experiments[-1].provenance()
        settings = settings_from_dict(self.experiments[-1].settings)
        limits = ", ".join(str(settings_from_dict(e.settings).limit or "none") for e in self.experiments)
        return (f"{', '.join(e.name for e in self.experiments)}: {largest.data}; {largest.image_size} px; "
                f"up to {epochs_text(largest.epochs)}; pretrained runs start from {largest.weights} weights; "
                f"{', '.join(f'{n:,}' for n in self.sizes())} training images (--limit {limits}), each size "
                f"holding out {settings.val_fraction:.0%} of its images for validation")

    def points(self, task: str, metric: str) -> dict[str, list[Point]]:
        """init -> its points, by size: the validation `metric` of the task's runs."""
        out: dict[str, list[Point]] = {init: [] for init in INITS}
        for experiment in self.experiments:
            odd = experiment.odd_runs()
            for run in experiment.runs:
                value = run.metrics.get("val", {}).get(metric) if isinstance(run.metrics.get("val"), dict) else None
                if run.task != task or run.run_id in odd or not _finite(value):
                    continue
                out.setdefault(run.init, []).append(
                    Point(experiment.name, run.init, float(value), train_images(experiment),
                          hover_text(experiment, run, metric, float(value))))
        return out

    def lead(self, task: str, metric: str) -> list[tuple[int, float]]:
        """(training images, pretrained minus scratch) at every size that has both runs."""
        points = self.points(task, metric)
        scratch = {p.train_images: p.value for p in points.get("scratch", [])}
        return [(p.train_images, p.value - scratch[p.train_images])
                for p in points.get("pretrained", []) if p.train_images in scratch]

    def reading(self, task: str) -> str:
        """One sentence on the task's curves: 'pretraining's lead in label accuracy: +0.39 at 77
        images, +0.05 at 307 (it shrinks as the data grows); in box IoU: ...'."""
        parts = []
        for metric in KEY_METRICS[task]:
            leads = self.lead(task, metric)
            if not leads:
                continue
            at = ", ".join(f"{lead:+.2f} at {n:,}" + (" images" if i == 0 else "") for i, (n, lead) in enumerate(leads))
            parts.append(f"in {METRIC_LABELS[metric]}: {at} ({trend(leads)})")
        if not parts:
            return f"No size of this sweep has both a pretrained and a scratch {task} run."
        behind = any(lead < 0 for metric in KEY_METRICS[task] for _, lead in self.lead(task, metric))
        return "Pretraining's lead " + "; ".join(parts) + (". A minus: scratch is ahead." if behind else ".")


def trend(leads: Sequence[tuple[int, float]]) -> str:
    """How the lead moves from the smallest size to the largest (a negative lead is scratch's)."""
    if len(leads) < 2:
        return "one size only"
    first, last = leads[0][1], leads[-1][1]
    if abs(last - first) < STEADY:
        return "about the same at every size"
    whose = "scratch's lead" if first < 0 and last < 0 else "it"
    if abs(last) < abs(first):
        return f"{whose} shrinks as the data grows"
    return f"{whose} grows with the data"


def report_values(task: str, metric: str) -> dict[str, float]:
    """The report's full-data value of a task's metric, per init ({} where it gives none)."""
    row = next((r for r in REPORT_NUMBERS if r["task"] == task and r["metric"] == metric), None)
    return {init: row[init] for init in INITS} if row else {}


def report_is_approx(task: str, metric: str) -> bool:
    return any(r["task"] == task and r["metric"] == metric and r["approx"] for r in REPORT_NUMBERS)


def train_images(experiment: Experiment) -> int:
    """How many images its runs trained on (config.json's dataset counts)."""
    return next(int(r.config["dataset"]["train"]) for r in experiment.runs if _train_count(r) is not None)


def hover_text(experiment: Experiment, run: Run, metric: str, value: float) -> str:
    """The tooltip of a run's point: Plotly's own tags around the store's text, shown as text."""
    counts = run.config.get("dataset", {})
    settings = settings_from_dict(experiment.settings)
    limit = f"--limit {settings.limit}" if settings.limit else "no --limit"
    best = run.config.get("best_epoch")
    return (f"<b>{plotly_text(experiment.name)}</b> · {plotly_text(run.label)}<br>val {METRIC_LABELS[metric]} "
            f"{value:.4f}<br>{counts.get('train', '?')} train / {counts.get('val', '?')} val / "
            f"{counts.get('test', '?')} test images ({limit})<br>{plotly_text(experiment.provenance().short())}<br>"
            f"{epochs_text(run.epochs_run)} run" + (f", best {best}" if best else ""))


def find_sweeps(experiments: Sequence[Experiment]) -> list[Sweep]:
    """Every group of two or more experiments that differ only in `limit` (and in settings that
    never change what a run learns), each at another number of training images. Where two
    hold the same size, the one named `<name>-n<limit>` is drawn, else the newest."""
    groups: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        if experiment.settings and any(_train_count(r) is not None for r in experiment.runs):
            groups.setdefault(_key(experiment.settings), []).append(experiment)
    sweeps = []
    for members in groups.values():
        by_size: dict[int, Experiment] = {}
        for experiment in sorted(members, key=lambda e: (_named_for_size(e), e.finished or "")):
            by_size[train_images(experiment)] = experiment  # the preferred one comes last
        if len(by_size) > 1:
            chosen = [by_size[n] for n in sorted(by_size)]
            sweeps.append(Sweep(_group_name(chosen), chosen))
    return sorted(sweeps, key=lambda s: s.name)


def sweep_of(experiment: Experiment, sweeps: Sequence[Sweep]) -> Sweep | None:
    """The sweep that draws this experiment, or None."""
    return next((s for s in sweeps if any(e.path == experiment.path for e in s.experiments)), None)


def _key(settings: dict) -> str:
    compared = {k: v for k, v in settings_from_dict(settings).to_dict().items()
                if k not in NOT_COMPARED and k != "limit"}
    return json.dumps(compared, sort_keys=True, default=str)


def _train_count(run: Run) -> int | None:
    dataset = run.config.get("dataset")
    count = dataset.get("train") if isinstance(dataset, dict) else None
    return count if isinstance(count, int) and count > 0 else None


def _named_for_size(experiment: Experiment) -> bool:
    match = SWEEP_NAME.match(experiment.name)
    return bool(match) and settings_from_dict(experiment.settings).limit == int(match["size"])


def _group_name(experiments: Sequence[Experiment]) -> str:
    matches = [SWEEP_NAME.match(e.name) for e in experiments]
    bases = {m["base"] for m in matches if m}
    if len(bases) == 1 and all(matches):
        return bases.pop()
    return ", ".join(e.name for e in experiments)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sweep_command(root: Path | str | None = None) -> str:
    """The demo sweep, for a page that has none to show."""
    return shlex.join(["python", "train.py", "--profile", "demo", "--sweep-limit", "96", "192", "384",
                       *runs_dir_words(root)])

