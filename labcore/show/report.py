"""The overview's tables and the report's three questions, answered from the user's own runs.

Everything here is plain data and text (markdown), so the app only lays it out. The answers
are worded for any subset of the six runs: what cannot be compared says which run is missing
and how to train it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from labcore.show.plots import best_epoch
from labcore.store.runs import Run
from labcore.settings import METRIC_LABELS, METRICS, REPORT_NUMBERS, TASKS
from labcore.show.text import code_span

# Pairs of runs the app offers as one click: (first, second).
PRESETS: dict[str, tuple[str, str]] = {
    "pretrained vs scratch · detection": ("detection-pretrained", "detection-scratch"),
    "pretrained vs scratch · segmentation": ("segmentation-pretrained", "segmentation-scratch"),
    "pretrained vs scratch · multitask": ("multitask-pretrained", "multitask-scratch"),
    "single-task vs multi-task · labels and boxes": ("detection-pretrained", "multitask-pretrained"),
    "single-task vs multi-task · masks": ("segmentation-pretrained", "multitask-pretrained"),
}
# The metrics each question compares.
KEY_METRICS = {
    "detection": ("label_accuracy", "bbox_mae"),
    "segmentation": ("mask_pixel_accuracy", "mask_miou"),
}
TIE = 0.005  # differences below this read as "about even"
MULTITASK_TOLERANCE = 0.02  # "as good as" the single-task run: within this on every metric
OVERFIT_RISE = 0.10  # val loss risen this much above its minimum
UNDERFIT_FALL = 0.10  # training loss fell less than this over the whole run


# --------------------------------------------------------------------------- tables

def overview_rows(runs: Sequence[Run], split: str = "val") -> list[dict[str, Any]]:
    """One row per run: how it was trained and its `split` metrics (None where absent)."""
    rows = []
    for run in runs:
        seconds = run.config.get("train_seconds")
        row = {
            "run": run.label,
            "backbone": run.config.get("backbone"),
            "weights": run.weights,
            "parameters": run.config.get("parameters"),
            "image size": run.image_size if run.config else None,
            "epochs run": run.epochs_run or None,
            "best epoch": run.config.get("best_epoch"),
            "training time (min)": round(seconds / 60, 1) if isinstance(seconds, (int, float)) else None,
        }
        values = run.metrics.get(split, {}) if isinstance(run.metrics.get(split), dict) else {}
        for metric in METRICS:
            row[METRIC_LABELS[metric]] = _number(values.get(metric))
        rows.append(row)
    return rows


def report_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The report's validation numbers with ours beside them (None where we have no run)."""
    by_id = {r.run_id: r for r in runs}
    rows = []
    for ref in REPORT_NUMBERS:
        row = {"task": ref["task"], "metric": METRIC_LABELS[ref["metric"]] + (" ~" if ref["approx"] else "")}
        for init in ("pretrained", "scratch"):
            run = by_id.get(f"{ref['task']}-{init}")
            row[f"report {init}"] = ref[init]
            row[f"ours {init}"] = val_value(run, ref["metric"]) if run else None
        rows.append(row)
    return rows


def val_value(run: Run, metric: str) -> float | None:
    """A validation figure of a run: metrics.json, or for a loss, the history at the best epoch."""
    if metric in METRICS:
        val = run.metrics.get("val")
        return _number(val.get(metric)) if isinstance(val, dict) else None
    series = run.history.get(f"val_{metric}", [])
    best = best_epoch(run.history.get("val_loss", []))
    return _number(series[best - 1]) if best and best <= len(series) else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    return float(value) if ok else None


# --------------------------------------------------------------------------- the questions

@dataclass
class Answer:
    question: str
    lines: list[str]  # markdown, one point each
    missing: list[str] = field(default_factory=list)  # run ids the full answer still needs
    headline: list[str] = field(default_factory=list)  # the lines that answer it, for a slide (else all)

    @property
    def short(self) -> list[str]:
        return self.headline or self.lines


def answers(runs: Sequence[Run]) -> list[Answer]:
    """The report's Q1, Q2 and Q3, answered from these runs."""
    return [pretrained_vs_scratch(runs, "detection"), pretrained_vs_scratch(runs, "segmentation"),
            multitask_worth_it(runs)]


def pretrained_vs_scratch(runs: Sequence[Run], task: str) -> Answer:
    """Q1 (detection) or Q2 (segmentation): who wins, by how much, and how each run fits."""
    by_id = {r.run_id: r for r in runs}
    ids = (f"{task}-pretrained", f"{task}-scratch")
    question = f"Does pretraining help {task}?"
    present = [by_id[i] for i in ids if i in by_id]
    missing = [i for i in ids if i not in by_id]
    if not present:
        return Answer(question, [f"Neither {task} run is in the store yet. {train_hint(runs, missing)}"], missing)
    lines = []
    if missing:
        lines.append(f"Only **{present[0].label}** is here, so there is nothing to compare it with. "
                     + train_hint(runs, missing))
        lines += [_metric_summary(present[0], KEY_METRICS[task])]
    else:
        pre, scr = present
        lines += [compare_metric(m, pre, scr) for m in KEY_METRICS[task]]
    headline = list(lines)
    lines += [f"**{r.run_id}**: " + "; ".join(fit_signs(r)) for r in present]
    return Answer(question, lines, missing, headline)


def multitask_worth_it(runs: Sequence[Run]) -> Answer:
    """Q3: is one multi-task model as good as the single-task ones, and what does it save?"""
    by_id = {r.run_id: r for r in runs}
    question = "Is one multi-task model as good as the single-task ones, and worth it?"
    needed = [f"{t}-{i}" for i in ("pretrained", "scratch") for t in TASKS]
    missing = [i for i in needed if i not in by_id]
    lines, verdicts = [], []
    for init in ("pretrained", "scratch"):
        multi = by_id.get(f"multitask-{init}")
        singles = [by_id[f"{t}-{init}"] for t in ("detection", "segmentation") if f"{t}-{init}" in by_id]
        if multi is None or not singles:
            continue
        behind, ahead, compared = [], [], []
        for single in singles:
            for metric in KEY_METRICS[single.task]:
                a, b = val_value(multi, metric), val_value(single, metric)
                if a is None or b is None:
                    continue
                compared.append(compare_metric(metric, multi, single))
                lag = (b - a) if METRICS[metric] else (a - b)
                if lag > MULTITASK_TOLERANCE:
                    behind.append(f"{METRIC_LABELS[metric]} (by {lag:.3f})")
                elif lag < -MULTITASK_TOLERANCE:
                    ahead.append(METRIC_LABELS[metric])
        if not compared:
            continue
        lines += compared
        cost = _cost_sentence(multi, singles)
        if behind:
            verdicts.append(f"**{init}: not as good** — the multi-task model trails on {', '.join(behind)}. "
                            f"{cost} Worth it only where one model to ship matters more than those points.")
        else:
            better = f", better on {', '.join(ahead)}" if ahead else ""
            verdicts.append(f"**{init}: as good** — nowhere more than {MULTITASK_TOLERANCE} behind the single-task "
                            f"run{'s' if len(singles) > 1 else ''}{better}. {cost}")
        lines.append(verdicts[-1])
        if len(singles) < 2:
            lines.append(f"(Only {singles[0].run_id} to compare with, so this covers "
                         f"{'labels and boxes' if singles[0].task == 'detection' else 'masks'} only.)")
    if not lines:
        lines.append("This needs a multitask run and at least one single-task run with the same start "
                     f"(pretrained or scratch). {train_hint(runs, missing)}")
    elif missing:
        lines.append(f"Not in the store: {', '.join(missing)}. {train_hint(runs, missing)}")
    return Answer(question, lines, missing, verdicts)


def _cost_sentence(multi: Run, singles: Sequence[Run]) -> str:
    """What the one model saves over the separate ones: parameters, training time, passes."""
    parts = []
    for key, unit in (("parameters", "the parameters"), ("train_seconds", "the training time")):
        ours, theirs = multi.config.get(key), [s.config.get(key) for s in singles]
        if isinstance(ours, (int, float)) and all(isinstance(t, (int, float)) and t for t in theirs):
            parts.append(f"{ours / sum(theirs):.0%} of {unit}")
    if len(singles) > 1:
        parts.append(f"one forward pass instead of {len(singles)}")
    names = " + ".join(s.run_id for s in singles)
    return f"Against {names} it needs {', '.join(parts)}." if parts else ""


def compare_metric(metric: str, a: Run, b: Run) -> str:
    """'label accuracy: **detection-pretrained** wins, 0.812 vs 0.095 (by 0.717)'."""
    label = METRIC_LABELS[metric]
    va, vb = val_value(a, metric), val_value(b, metric)
    if va is None or vb is None:
        lacking = " and ".join(r.run_id for r, v in ((a, va), (b, vb)) if v is None)
        return f"{label}: no validation figure for {lacking}."
    gap = abs(va - vb)
    if gap < TIE:
        return f"{label}: about even, {va:.3f} ({a.run_id}) vs {vb:.3f} ({b.run_id})."
    higher_better = METRICS.get(metric, False)
    winner, loser = (a, b) if (va > vb) == higher_better else (b, a)
    w, l_ = (va, vb) if winner is a else (vb, va)
    how = "higher" if higher_better else "lower"
    return f"{label}: **{winner.run_id}** wins, {w:.3f} vs {l_:.3f} ({gap:.3f} {how})."


def _metric_summary(run: Run, metrics: Sequence[str]) -> str:
    values = [(METRIC_LABELS[m], val_value(run, m)) for m in metrics]
    shown = ", ".join(f"{name} {v:.3f}" for name, v in values if v is not None)
    return f"{run.run_id}: {shown}." if shown else f"{run.run_id} has no validation figures."


def fit_signs(run: Run) -> list[str]:
    """Signs of over- or under-fitting read off the loss curves, in plain words.

    Over-fitting: validation loss rose more than 10 % above its minimum while training loss
    kept falling. Under-fitting: training loss fell less than 10 % over the whole run.
    Under-trained: validation loss was still falling at the last epoch. A run whose validation
    loss is NaN at every epoch has no best epoch, and says so."""
    loss, val = run.history.get("loss", []), run.history.get("val_loss", [])
    if len(loss) < 2 or len(val) < 2:
        return ["too few epochs to judge its fit"]
    best = best_epoch(val)
    if best is None:
        return ["validation loss is not a number at any epoch: the run diverged, so there is no best epoch"]
    signs = []
    low, last = float(np.nanmin(val)), val[-1]
    if best < len(val) and last > low * (1 + OVERFIT_RISE) and loss[-1] < loss[best - 1]:
        signs.append(f"over-fitting: val loss was lowest at epoch {best} of {len(val)} and has risen "
                     f"{last / low - 1:.0%} since, while training loss kept falling")
    fall = 1 - loss[-1] / loss[0] if loss[0] else 0.0
    if fall < UNDERFIT_FALL:
        signs.append(f"under-fitting: training loss fell only {fall:.0%} ({loss[0]:.3f} → {loss[-1]:.3f})")
    if best == len(val) and val[-2] > last * 1.01:
        signs.append(f"still improving at its last epoch ({len(val)}): more epochs would likely help")
    return signs or ["no clear sign of over- or under-fitting"]


def train_hint(runs: Sequence[Run], missing: Sequence[str]) -> str:
    """The command that trains the missing runs into the same experiment, with its settings."""
    from labcore.store.experiments import train_command

    stored = next((r.config["settings"] for r in runs if isinstance(r.config.get("settings"), dict)), None)
    if stored is None:
        return f"Train {'it' if len(missing) == 1 else 'them'} with `python train.py --profile demo`."
    folder = runs[0].path.parent
    command = train_command(stored, folder.name, folder.parent, missing)
    return f"Train {'it' if len(missing) == 1 else 'them'} with {code_span(command)}."
