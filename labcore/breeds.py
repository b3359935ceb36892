"""Per-breed results from a run's breed confusion counts (`confusion.json`).

Training stores, for each run with a breed head, the counts of (true breed, predicted breed)
on val and test, so the app and the export show per-breed accuracy, cat vs dog accuracy and
the most confused pairs without the dataset at hand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labcore.runs import write_json
from labcore.settings import BREEDS, NUM_CLASSES, breed_name

if TYPE_CHECKING:
    import plotly.graph_objects as go

CONFUSION_FILE = "confusion.json"
SPLITS = ("val", "test")
# The dataset names cat breeds with a capital letter and dog breeds in lower case.
IS_CAT = np.array([name[:1].isupper() for name in BREEDS])


class ConfusionUnavailable(RuntimeError):
    """The run has no usable confusion.json; the message says why and what to do."""


@dataclass
class Confusion:
    """Breed confusion counts of one split: `counts[true, predicted]`, rows and columns in
    `classes` order (the dataset's class-id order)."""

    counts: np.ndarray
    classes: tuple[str, ...] = BREEDS

    @property
    def names(self) -> list[str]:
        return [breed_name(BREEDS.index(c)) if c in BREEDS else c for c in self.classes]

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def accuracy(self) -> float:
        return float(np.trace(self.counts) / max(self.total, 1))

    def per_breed_accuracy(self) -> np.ndarray:
        """Recall of each breed (correct / examples of that breed); NaN where a breed has none."""
        support = self.counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(support > 0, np.diag(self.counts) / support, np.nan)

    def support(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def present(self) -> list[int]:
        """The breeds this split holds (at least one image), in class order: what the charts show."""
        return [int(i) for i in np.flatnonzero(self.support() > 0)]

    def cat_dog_accuracy(self) -> dict[str, float]:
        """Breed accuracy over the cat and the dog examples, and how often the species alone is
        right (a cat predicted as any cat breed)."""
        c = self.counts
        out = {}
        for name, rows in (("cat", IS_CAT), ("dog", ~IS_CAT)):
            n = c[rows].sum()
            out[f"{name}_accuracy"] = float(np.trace(c[np.ix_(rows, rows)]) / n) if n else float("nan")
        species_right = c[np.ix_(IS_CAT, IS_CAT)].sum() + c[np.ix_(~IS_CAT, ~IS_CAT)].sum()
        out["species_accuracy"] = float(species_right / self.total) if self.total else float("nan")
        return out

    def top_confused(self, k: int = 10) -> list[tuple[str, str, int]]:
        """The k largest off-diagonal counts as (true breed, predicted breed, count), largest
        first; ties in class order."""
        off = self.counts.copy()
        np.fill_diagonal(off, 0)
        flat = np.argsort(-off, axis=None, kind="stable")[:k]
        names = self.names
        pairs = []
        for index in flat:
            true, pred = divmod(int(index), off.shape[1])
            if off[true, pred] <= 0:
                break
            pairs.append((names[true], names[pred], int(off[true, pred])))
        return pairs


def confusion_record(confusions: dict[str, np.ndarray]) -> dict:
    """What confusion.json holds: the class order and each split's counts [true][predicted]."""
    return {"classes": list(BREEDS), "splits": {name: np.asarray(c).astype(int).tolist()
                                                for name, c in confusions.items()}}


def write_confusion(run_path: Path, confusions: dict[str, np.ndarray]) -> None:
    write_json(Path(run_path) / CONFUSION_FILE, confusion_record(confusions))


def load_confusion(run_path: Path | str) -> dict[str, Confusion]:
    """A run's confusion counts by split. Raises ConfusionUnavailable with a readable reason."""
    path = Path(run_path) / CONFUSION_FILE
    if not path.is_file():
        raise ConfusionUnavailable(f"{Path(run_path).name} has no {CONFUSION_FILE}: it was trained before "
                                   "per-breed results were stored; retrain to see this")
    try:
        data = json.loads(path.read_text())
        classes = tuple(data["classes"])
        splits = {name: np.asarray(counts, dtype=np.int64) for name, counts in data["splits"].items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ConfusionUnavailable(f"{path} is unreadable ({type(err).__name__}); retrain the run "
                                   "to write it again") from err
    n = len(classes)
    if n != NUM_CLASSES or any(c.shape != (n, n) or (c < 0).any() for c in splits.values()):
        raise ConfusionUnavailable(f"{path} does not hold {NUM_CLASSES}x{NUM_CLASSES} counts")
    return {name: Confusion(counts, classes) for name, counts in splits.items()}



# --------------------------------------------------------------------------- figures

def accuracy_figure(confusion: Confusion, title: str) -> "go.Figure":
    """Per-breed accuracy as bars, best first; cats and dogs in two colours, support on hover."""
    import plotly.graph_objects as go

    from labcore.plots import projector_layout

    accuracy, support = confusion.per_breed_accuracy(), confusion.support()
    order = [i for i in np.argsort(-np.nan_to_num(accuracy, nan=-1), kind="stable") if support[i] > 0]
    names = confusion.names
    fig = go.Figure()
    for species, colour in (("cat", "#E69F00"), ("dog", "#0072B2")):
        shown = [i for i in order if IS_CAT[i] == (species == "cat")]
        fig.add_trace(go.Bar(x=[names[i] for i in shown], y=[accuracy[i] for i in shown], name=species,
                             marker_color=colour, customdata=[int(support[i]) for i in shown],
                             hovertemplate="%{x}: %{y:.0%} of %{customdata} images<extra></extra>"))
    fig.update_layout(title=title, yaxis_title="accuracy", yaxis_range=[0, 1], yaxis_tickformat=".0%")
    fig.update_xaxes(categoryorder="array", categoryarray=[names[i] for i in order], tickangle=-60,
                     tickfont=dict(size=12))
    projector_layout(fig, height=560)
    return fig.update_layout(hovermode="closest", legend=dict(y=1.02, yanchor="bottom", x=1, xanchor="right"),
                             margin=dict(b=40))


OTHER = "other breeds"


def confusion_figure(confusion: Confusion, title: str) -> "go.Figure":
    """The counts as a heat map, rows the true breed, columns the predicted one, over the breeds
    the split holds only (a 3-breed slice gets a 3 x 3 map); predictions of any breed outside
    them add one column, "other breeds". Names on both axes, smaller as the breeds grow."""
    import plotly.graph_objects as go

    from labcore.plots import projector_layout

    present = confusion.present()
    names = confusion.names
    rows = confusion.counts[present]
    z = rows[:, present]
    columns = [names[i] for i in present]
    outside = rows.sum(axis=1) - z.sum(axis=1)
    if outside.any():
        z = np.column_stack([z, outside])
        columns.append(OTHER)
    font = 12 if len(present) <= 12 else 10 if len(present) <= 24 else 8
    fig = go.Figure(go.Heatmap(z=z, x=columns, y=[names[i] for i in present], colorscale="Blues",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted breed", yaxis_title="true breed")
    fig.update_xaxes(tickfont=dict(size=font), tickangle=-45, automargin=True)
    fig.update_yaxes(tickfont=dict(size=font), autorange="reversed", automargin=True)
    projector_layout(fig, height=min(720, 320 + 12 * len(present)))
    return fig.update_layout(hovermode="closest", margin=dict(l=20, r=20, t=60, b=20))
