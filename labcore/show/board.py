"""The class board: the photos a class uploads on the Live page, scored by the breed heads.

Each upload is one entry per (session, photo): the same photo again, or a changed breed, updates
that entry instead of adding one. Recording keeps running tallies (each model's top breeds, and on
the uploads whose breed the student named, each breed head's top-1 and top-5 hits), so it costs the
same with 5 uploads or 5,000, and drawing reads the tallies, never the entries. Nothing here
touches the disk: the board lives as long as the server process (SPEC). Not thread-safe by
itself: the app holds it behind one lock (ui/board.py).
"""
from __future__ import annotations

import csv
import io
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from PIL import Image

from labcore.settings import BREEDS, INITS, RUN_IDS, TASK_OUTPUTS, breed_name

NOT_SURE = "not sure"
MIXED = "mixed"
# What a student may answer to "What breed is it?": a breed (its index), or one of these.
OTHER_ANSWERS = (NOT_SURE, MIXED)
MAX_THUMBNAILS = 60
THUMB_PX = 96
MODES = {"live": "live", "reveal": "after I reveal it"}
BREED_RUNS = tuple(r for r in RUN_IDS if "label" in TASK_OUTPUTS[r.split("-")[0]])
DRAWN_PETS_NOTE = ("These models learned drawn pets: they never saw a photo, so their guesses on your pets "
                   "show what a model does far from its training data, not how good it is.")

Answer = int | str | None  # a breed index, NOT_SURE, MIXED, or None (not answered)


def breed_choices() -> list[Answer]:
    """The answers "What breed is it?" offers, in the order shown: the 37 breeds by name, then
    "not sure" and "mixed"."""
    return [*sorted(range(len(BREEDS)), key=lambda k: breed_name(k).lower()), *OTHER_ANSWERS]


def answer_text(answer: Answer) -> str:
    return breed_name(answer) if isinstance(answer, int) else str(answer)


@dataclass(frozen=True)
class Upload:
    top5: Mapping[str, tuple[int, ...]]  # run id -> its five most likely breeds, best first
    breed: Answer = None  # what the student said it is

    @property
    def labelled(self) -> bool:
        return isinstance(self.breed, int)


@dataclass(frozen=True)
class Score:
    """One breed head's hits on the labelled pets it answered."""
    labelled: int
    top1: int
    top5: int


@dataclass(frozen=True)
class Tally:
    """What the board shows, copied out of the board at one moment (safe to draw unlocked)."""
    version: int
    pets: int
    labelled: int
    top_breeds: Mapping[str, Counter]  # run id -> how often each breed was its top-1
    scores: Mapping[str, Score]
    thumbnails: tuple[bytes, ...]  # oldest first
    mode: str
    revealed: bool

    @property
    def shown(self) -> bool:
        """Whether the results are on show: always in "live" mode, after the reveal otherwise."""
        return self.mode == "live" or self.revealed

    def top_breed_rows(self) -> list[dict[str, str]]:
        """Per model with a breed head: its most frequent top breed across the pets."""
        rows = []
        for run_id, counts in self.top_breeds.items():
            if counts:
                (breed, n), = counts.most_common(1)
                rows.append({"model": run_id, "its top breed most often": f"{breed_name(breed)} ({n} of {self.pets})"})
        return rows

    def accuracy_rows(self) -> list[dict[str, str]]:
        """Per task with a breed head: top-1 and top-5 accuracy on the labelled pets, pretrained
        beside scratch, each with the count it rests on."""
        rows = []
        for task in dict.fromkeys(r.split("-")[0] for r in BREED_RUNS):
            row = {"task": task}
            for init in INITS:
                score = self.scores.get(f"{task}-{init}")
                row[f"{init} top-1"] = share(score.top1, score.labelled) if score else "—"
                row[f"{init} top-5"] = share(score.top5, score.labelled) if score else "—"
            rows.append(row)
        return rows


def plural(count: int, noun: str) -> str:
    """'1 pet', '2 pets'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def share(hits: int, total: int) -> str:
    """'0.40 (4 of 10)': the fraction and the counts it rests on."""
    return f"{hits / total:.2f} ({hits} of {total})" if total else "— (no labelled pets)"


@dataclass
class Board:
    mode: str = "live"
    revealed: bool = False
    version: int = 0
    _entries: dict[tuple[str, str], Upload] = field(default_factory=dict)
    _top: dict[str, Counter] = field(default_factory=dict)
    _scores: dict[str, list[int]] = field(default_factory=dict)  # run id -> [labelled, top1, top5]
    _labelled: int = 0
    _thumbs: OrderedDict = field(default_factory=OrderedDict)

    def record(self, session: str, photo: str, top5: Mapping[str, Sequence[int]], breed: Answer = None,
               thumbnail: bytes | None = None) -> bool:
        """Put one session's photo on the board (or update its entry); the thumbnail only where
        given, i.e. where the student opted in. Returns whether anything changed."""
        key = (session, photo)
        upload = Upload({run: tuple(int(k) for k in ks[:5]) for run, ks in top5.items()}, breed)
        old = self._entries.get(key)
        same_thumb = self._thumbs.get(key) == thumbnail
        if old == upload and same_thumb:
            return False
        if old is not None:
            self._count(old, -1)
        self._entries[key] = upload
        self._count(upload, +1)
        self._thumbs.pop(key, None)
        if thumbnail is not None:
            self._thumbs[key] = thumbnail
            if len(self._thumbs) > MAX_THUMBNAILS:
                self._thumbs.popitem(last=False)
        self.version += 1
        return True

    def _count(self, upload: Upload, sign: int) -> None:
        """Add (+1) or take back (-1) one upload's part of the tallies."""
        self._labelled += sign * upload.labelled
        for run_id, top5 in upload.top5.items():
            if top5:
                self._top.setdefault(run_id, Counter())[top5[0]] += sign
            if upload.labelled:
                score = self._scores.setdefault(run_id, [0, 0, 0])
                score[0] += sign
                score[1] += sign * (top5[:1] == (upload.breed,))
                score[2] += sign * (upload.breed in top5)

    def reset(self) -> None:
        """Empty the board (the mode stays; a reveal is taken back)."""
        self._entries.clear()
        self._top.clear()
        self._scores.clear()
        self._thumbs.clear()
        self._labelled, self.revealed = 0, False
        self.version += 1

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown board mode {mode!r}; one of {', '.join(MODES)}")
        self.mode, self.revealed = mode, False
        self.version += 1

    def reveal(self) -> None:
        self.revealed = True
        self.version += 1

    def tally(self) -> Tally:
        return Tally(self.version, len(self._entries), self._labelled,
                     {r: +self._top[r] for r in BREED_RUNS if r in self._top},
                     {r: Score(*self._scores[r]) for r in BREED_RUNS if r in self._scores},
                     tuple(self._thumbs.values()), self.mode, self.revealed)


def tally_csv(tally: Tally) -> str:
    """The tally as CSV, one row per breed head (no photos): pets, top breed, hits."""
    out = io.StringIO()
    columns = ["model", "pets", "top breed", "top breed count", "labelled pets", "top-1 right", "top-1 accuracy",
               "top-5 right", "top-5 accuracy"]
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for run_id in BREED_RUNS:
        counts, score = tally.top_breeds.get(run_id), tally.scores.get(run_id, Score(0, 0, 0))
        if not counts and not score.labelled:
            continue
        (breed, n), = counts.most_common(1) if counts else ((None, 0),)
        writer.writerow({"model": run_id, "pets": tally.pets,
                         "top breed": breed_name(breed) if breed is not None else "",
                         "top breed count": n, "labelled pets": score.labelled, "top-1 right": score.top1,
                         "top-1 accuracy": _ratio(score.top1, score.labelled), "top-5 right": score.top5,
                         "top-5 accuracy": _ratio(score.top5, score.labelled)})
    return out.getvalue()


def _ratio(hits: int, total: int) -> str:
    return f"{hits / total:.4f}" if total else ""


def thumbnail(picture: Image.Image) -> bytes:
    """A photo as the board keeps it: at most THUMB_PX on a side, JPEG."""
    small = picture.convert("RGB")
    small.thumbnail((THUMB_PX, THUMB_PX))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def mosaic(thumbnails: Sequence[bytes], columns: int = 12) -> bytes | None:
    """The thumbnails as one JPEG, newest first, `columns` to a row: one picture to send, not 60."""
    if not thumbnails:
        return None
    rows = -(-len(thumbnails) // columns)
    sheet = Image.new("RGB", (columns * (THUMB_PX + 4), rows * (THUMB_PX + 4)), "white")
    for n, data in enumerate(reversed(thumbnails)):
        tile = Image.open(io.BytesIO(data))
        x, y = (n % columns) * (THUMB_PX + 4) + 2, (n // columns) * (THUMB_PX + 4) + 2
        sheet.paste(tile, (x + (THUMB_PX - tile.width) // 2, y + (THUMB_PX - tile.height) // 2))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
