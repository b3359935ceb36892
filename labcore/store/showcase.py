"""The showcase: a fixed set of an experiment's test images, stored with it, so every page opens
where the data is not (a laptop presenting what a GPU machine trained).

    <experiment>/showcase/showcase.json     what each picture is: test index, breed, head box
    <experiment>/showcase/NN.jpg            the photo, longest side at most 512 px
    <experiment>/showcase/NN-mask.png       its pet mask, 1 bit per pixel, the photo's size

Up to 64 images of the test split the runs were scored on, every breed present, drawn with the
experiment's seed (the same ones every time). Training writes it once per experiment (again
when the data or the seed change); `python -m labcore.store.showcase --experiment NAME` writes it for
an experiment trained before it existed, on a machine that has the data.

`experiment_images` is what the pages and the export use: the experiment's data where this machine
has it, else its showcase, with one caption saying which.

A showcase may come from anyone (a copied folder): `load_showcase` shows only plain file names of
its own folder (no path, no `..`, no link), JPEG photos and PNG masks at display size, and the
37 breeds' labels; anything else makes the whole showcase `ShowcaseDamaged`, with the reason.
"""
from __future__ import annotations

import argparse
import math
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from labcore.store.runs import read_json, write_json
from labcore.settings import NUM_CLASSES, Settings

SHOWCASE_DIR = "showcase"
INDEX_FILE = "showcase.json"
COUNT = 64
LONGEST_SIDE = 512
JPEG_QUALITY = 85
# What names the data a showcase was drawn from: another value means another showcase.
IDENTITY = ("dataset", "data_dir", "limit", "seed")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a file of the showcase folder itself


class ShowcaseDamaged(ValueError):
    """showcase.json lists something that cannot be shown; the message names the file and why."""


class ShowcaseUnavailable(RuntimeError):
    """Neither the data nor a showcase is at hand; the message says why, `command` is the way out."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


def choose(labels: np.ndarray, count: int, seed: int) -> list[int]:
    """Positions into `labels`: one image of every breed present (a random one of each), then
    random others up to `count`; sorted. With more breeds than `count`, `count` of the breeds."""
    rng = np.random.default_rng(seed)
    order = [int(k) for k in rng.permutation(len(labels))]
    first: dict[int, int] = {}
    for k in order:
        first.setdefault(int(labels[k]), k)
    picked = list(first.values())
    if len(picked) >= count:
        return sorted(int(k) for k in rng.choice(picked, count, replace=False))
    taken = set(picked)
    picked += [k for k in order if k not in taken][:count - len(picked)]
    return sorted(picked)


def display_size(width: int, height: int, longest: int = LONGEST_SIDE) -> tuple[int, int]:
    """(width, height) with the longest side at most `longest`; never enlarged."""
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def identity(settings: Settings) -> dict:
    return {key: getattr(settings, key) for key in IDENTITY}


def folder(experiment: Path | str) -> Path:
    return Path(experiment) / SHOWCASE_DIR


def is_current(experiment: Path | str, settings: Settings) -> bool:
    """Whether the experiment holds a showcase drawn from the data these settings name."""
    index = read_json(folder(experiment) / INDEX_FILE)
    return isinstance(index, dict) and index.get("identity") == identity(settings)


def write_showcase(experiment: Path | str, source, settings: Settings, count: int = COUNT) -> Path:
    """Store `count` test images of `source` (as the runs were scored on them) in the
    experiment's showcase folder, replacing any older one whole. Returns the folder."""
    from labcore.data.pipeline import raw_examples, test_indices

    labels = source.labels["test"]
    pool = test_indices(labels, settings)
    indices = [int(pool[k]) for k in choose(labels[pool], count, settings.seed)]
    target = folder(experiment)
    staging = target.with_name(SHOWCASE_DIR + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    items = []
    for n, (index, example) in enumerate(zip(indices, raw_examples(source, "test", indices))):
        photo = Image.fromarray(example["image"])
        size = display_size(*photo.size)
        photo.resize(size, Image.Resampling.LANCZOS).save(staging / f"{n:02d}.jpg", quality=JPEG_QUALITY)
        mask = Image.fromarray((example["mask"][..., 0] > 0).astype(np.uint8) * 255)
        mask.resize(size, Image.Resampling.NEAREST).convert("1").save(staging / f"{n:02d}-mask.png")
        has_box = float(example["has_box"]) > 0.5
        items.append({"index": index, "label": int(example["label"]), "image": f"{n:02d}.jpg",
                      "mask": f"{n:02d}-mask.png", "bbox": [float(v) for v in example["bbox"]] if has_box else None})
    write_json(staging / INDEX_FILE, {
        "identity": identity(settings), "split": "test", "source": source.description,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), "items": items})
    old = target.with_name(SHOWCASE_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def ensure_showcase(experiment: Path | str, source, settings: Settings,
                    progress: Callable[[str], None] = print) -> None:
    """Write the showcase unless the experiment already holds one of this data (one call from training)."""
    if is_current(experiment, settings):
        return
    path = write_showcase(experiment, source, settings)
    progress(f"showcase: {len(load_showcase(experiment).labels)} test images stored in {path} "
             f"({size_on_disk(path) / 2**20:.1f} MB)")


def size_on_disk(path: Path | str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@dataclass
class Showcase:
    """A stored showcase; its examples have the fields of labcore.data.sources' examples."""

    path: Path
    items: list[dict]
    description: str

    @property
    def labels(self) -> np.ndarray:
        return np.array([item["label"] for item in self.items], np.int32)

    def example(self, position: int) -> dict:
        item = self.items[position]
        image = np.asarray(Image.open(self.path / item["image"], formats=["JPEG"]).convert("RGB"))
        mask = np.asarray(Image.open(self.path / item["mask"], formats=["PNG"]).convert("L")) > 0
        box = item.get("bbox")
        return {"image": image, "label": np.int32(item["label"]), "mask": mask.astype(np.uint8)[..., None],
                "bbox": np.array(box if box else [0.0] * 4, np.float32),
                "has_box": np.float32(1.0 if box else 0.0)}

    def source(self):
        """The showcase as a labcore.data.sources.Source with a test split only."""
        import tensorflow as tf

        from labcore.data.sources import Source

        def make(positions: list[int] | None = None) -> tf.data.Dataset:
            spec = {"image": tf.TensorSpec([None, None, 3], tf.uint8), "label": tf.TensorSpec([], tf.int32),
                    "mask": tf.TensorSpec([None, None, 1], tf.uint8), "bbox": tf.TensorSpec([4], tf.float32),
                    "has_box": tf.TensorSpec([], tf.float32)}
            chosen = range(len(self.items)) if positions is None else positions
            return tf.data.Dataset.from_generator(lambda: (self.example(k) for k in chosen), output_signature=spec)

        return Source(name="showcase", description=stored_caption(len(self.items)),
                      labels={"test": self.labels}, make={"test": make}, pick={"test": make})


def load_showcase(experiment: Path | str) -> Showcase | None:
    """The experiment's showcase, or None where it has none. Raises ShowcaseDamaged where its
    showcase.json cannot be read or lists anything but its own pictures (see the module's docstring)."""
    path = folder(experiment)
    if not (path / INDEX_FILE).is_file():
        return None
    where = f"{SHOWCASE_DIR}/{INDEX_FILE}"
    index = read_json(path / INDEX_FILE)
    if path.is_symlink() or not isinstance(index, dict) or not isinstance(index.get("items"), list) \
            or not index["items"]:
        raise ShowcaseDamaged(f"{where} cannot be read, lists no images or is not in the experiment's folder")
    for n, item in enumerate(index["items"]):
        problem = _item_problem(path, item)
        if problem:
            raise ShowcaseDamaged(f"{where}, image {n + 1}: {problem}")
    return Showcase(path, index["items"], str(index.get("source", "")))


def _item_problem(path: Path, item) -> str | None:
    """Why one entry of showcase.json cannot be shown, or None where it can."""
    if not isinstance(item, dict):
        return "not a description of an image"
    files = {}
    for key, kind in (("image", "JPEG"), ("mask", "PNG")):
        name = item.get(key)
        if not isinstance(name, str) or not FILE_NAME.match(name):
            return f"its {key} {str(name)[:40]!r} is not a file name of the showcase folder"
        if (path / name).is_symlink() or not (path / name).is_file():
            return f"its {key} {name} is not a file of the showcase folder"
        try:
            with Image.open(path / name, formats=[kind]) as picture:
                files[key] = picture.size
        except (OSError, SyntaxError, ValueError):
            return f"its {key} {name} is not a {kind} file"
    if max(files["image"]) > LONGEST_SIDE or files["mask"] != files["image"]:
        return f"its pictures are not {LONGEST_SIDE} px at most, or the mask is not the photo's size"
    label, box = item.get("label"), item.get("bbox")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < NUM_CLASSES:
        return f"its label is not one of the {NUM_CLASSES} breeds"
    if box is not None and not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1
            for v in box)):
        return "its head box is not four numbers from 0 to 1"
    return None


def stored_caption(count: int) -> str:
    return f"the data is not on this machine: the {count} test images stored with the experiment"


@dataclass
class ShownImages:
    """The test images a page shows for an experiment: `pool` indexes `source`'s test split;
    `key` names them for caches."""

    source: object  # labcore.data.sources.Source
    pool: list[int]
    caption: str
    key: str
    stored: bool  # True: the showcase, not the data


def experiment_images(experiment: Path | str, settings: Settings,
                      opener: Callable[[Settings], object] | None = None) -> ShownImages:
    """The experiment's test images from its data where this machine has it (opened with
    `opener`, default labcore.data.sources.open_source), else from its showcase. Raises
    ShowcaseUnavailable, with the way out, where there is neither."""
    from labcore.data.pipeline import test_indices
    from labcore.data.sources import open_source, source_key
    from labcore.data.sources import DataUnavailable

    try:
        source = (opener or open_source)(settings)
    except DataUnavailable as err:
        name = Path(experiment).name
        try:
            showcase, why = load_showcase(experiment), "no test images are stored with it"
        except ShowcaseDamaged as damaged:
            showcase, why = None, f"its stored test images cannot be used ({damaged})"
        if showcase is None:
            raise ShowcaseUnavailable(
                f"The data of experiment '{name}' is not on this machine ({err}), and {why}: store them "
                "on the machine that has the data with the command below (then copy the experiment "
                "again), or retrain it here.",
                f"python -m labcore.store.showcase --experiment {shlex.quote(name)}  # --runs-dir ROOT, if not runs/"
            ) from err
        source = showcase.source()
        stamp = (showcase.path / INDEX_FILE).stat().st_mtime_ns
        return ShownImages(source, list(range(len(showcase.items))), source.description,
                           f"showcase|{showcase.path}|{stamp}", stored=True)
    pool = [int(i) for i in test_indices(source.labels["test"], settings)]
    return ShownImages(source, pool, f"{source.description} · test split", source_key(settings), stored=False)


def main(argv: list[str] | None = None) -> int:
    from labcore.store.experiments import list_experiments
    from labcore.store.runs import default_runs_dir
    from labcore.settings import settings_from_dict
    from labcore.data.sources import DataUnavailable

    p = argparse.ArgumentParser(prog="python -m labcore.store.showcase",
                                description="Store an experiment's showcase (up to 64 test images with their "
                                            "truth) so it opens complete on a machine without its data.")
    p.add_argument("--experiment", required=True, help="the experiment's name (its folder under the runs root)")
    p.add_argument("--runs-dir", default=str(default_runs_dir()),
                   help="the runs root (default: $PETLAB_RUNS_DIR, else runs)")
    args = p.parse_args(argv)
    found = {e.key: e for e in list_experiments(args.runs_dir)}
    experiment = found.get(args.experiment)
    if experiment is None:
        print(f"labcore.store.showcase: no experiment {args.experiment!r} in {args.runs_dir}"
              + (f"; there are: {', '.join(found)}" if found else ""), file=sys.stderr)
        return 1
    if not experiment.settings:
        print(f"labcore.store.showcase: {experiment.path} records no settings (no finished run): nothing to show",
              file=sys.stderr)
        return 1
    settings = settings_from_dict(experiment.settings)
    from labcore.data.sources import open_source

    try:
        source = open_source(settings)
    except DataUnavailable as err:
        print(f"labcore.store.showcase: the data of '{experiment.name}' is not on this machine: {err}", file=sys.stderr)
        return 1
    try:
        path = write_showcase(experiment.path, source, settings)
    except OSError as err:
        print(f"labcore.store.showcase: cannot write into {experiment.path}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"wrote {path}: {len(load_showcase(experiment.path).items)} test images, "
          f"{size_on_disk(path) / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
