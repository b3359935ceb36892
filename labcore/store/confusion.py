"""A run's breed confusion counts (`confusion.json`): written by training, read by the pages.

Training stores, for each run with a breed head, the counts of (true breed, predicted breed)
on val and test, so the app and the export show per-breed accuracy, cat vs dog accuracy and
the most confused pairs without the dataset at hand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labcore.settings import BREEDS, NUM_CLASSES, breed_name
from labcore.store.runs import write_json

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
    if classes != BREEDS or any(c.shape != (n, n) or (c < 0).any() for c in splits.values()):
        raise ConfusionUnavailable(f"{path} does not hold {NUM_CLASSES}x{NUM_CLASSES} counts of the dataset's breeds")
    return {name: Confusion(counts, classes) for name, counts in splits.items()}
