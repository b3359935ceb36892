"""Three sources of Oxford-IIIT Pet examples behind one interface.

Every source gives, per split (`trainval`, `test`), a tf.data.Dataset of unbatched examples

    image    uint8 [H, W, 3]
    label    int32 scalar, 0..36 (the dataset's class id minus one)
    bbox     float32 [4], the head box normalised to 0..1, order (ymin, xmin, ymax, xmax)
    has_box  float32 scalar, 1 where the example has a head box, else 0 (and bbox is zeros)
    mask     uint8 [H, W, 1], 1 = pet, 0 = background

plus the labels of each split as a numpy array (for the stratified split and `--limit`).
The trimap's border class (3) counts as pet: it is the outline of the animal, so the binary
mask covers the whole silhouette.
"""
from __future__ import annotations

import logging
import os
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from PIL import Image

from labcore.settings import NUM_CLASSES, Settings

log = logging.getLogger(__name__)
SPLITS = ("trainval", "test")


class DataUnavailable(RuntimeError):
    """The chosen source cannot give data; the message says how to get some."""


@dataclass
class Source:
    name: str
    description: str
    # split -> labels (0..36) in the order the dataset yields examples
    labels: dict[str, np.ndarray]
    # split -> callable making the dataset of unbatched examples
    make: dict[str, Callable[[], tf.data.Dataset]] = field(repr=False)
    # split -> callable making a dataset of only the examples at the given positions (sorted,
    # distinct, in range), in that order, reading nothing else: what the app's browsers show
    pick: dict[str, Callable[[list[int]], tf.data.Dataset]] = field(default_factory=dict, repr=False)

    def dataset(self, split: str) -> tf.data.Dataset:
        return self.make[split]()


def load_source(settings: Settings) -> Source:
    """The source named by `settings.dataset`."""
    if settings.dataset == "synthetic":
        return synthetic_source(settings.limit or 384, seed=settings.seed)
    if settings.dataset == "folder":
        if not settings.data_dir:
            raise DataUnavailable("--dataset folder needs --data-dir PATH (the folder that holds "
                                  "images/ and annotations/).")
        return folder_source(settings.data_dir)
    if settings.dataset == "oxford_iiit_pet":
        return tfds_source(settings.data_dir)
    raise DataUnavailable(f"unknown dataset {settings.dataset!r}: use oxford_iiit_pet, folder or synthetic")


# --------------------------------------------------------------------------- synthetic

SYNTHETIC_SIZE = 96
HUES = 12  # class c is drawn with hue c % 12 and coat pattern c // 12 (solid, stripes, spots, rings)


def draw_pet(label: int, rng: np.random.Generator, size: int = SYNTHETIC_SIZE):
    """One drawn "pet": a body ellipse and a head disc on a noisy background.

    The class sets the coat (hue and pattern), so it is learnable from colour and texture;
    the head disc's bounding box is the head box, body and head together are the mask.
    Returns (image uint8 [size, size, 3], box (ymin, xmin, ymax, xmax) normalised, mask uint8).
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = rng.uniform(40, 200, 3) + rng.normal(0, 18, (size, size, 3))
    cy, cx = rng.uniform(0.5, 0.62, 2) * size
    ry, rx = rng.uniform(0.22, 0.32, 2) * size
    body = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    hr = rng.uniform(0.12, 0.16) * size
    hy = cy - ry * rng.uniform(0.7, 0.9)
    hx = cx + rx * rng.uniform(-0.6, 0.6)
    head = (yy - hy) ** 2 + (xx - hx) ** 2 <= hr ** 2
    mask = body | head

    hue = (label % HUES) / HUES
    coat = np.array(_hsv_to_rgb(hue, 0.85, 0.95)) * 255.0
    pattern = label // HUES
    if pattern == 1:
        marks = np.sin(xx * 0.9) > 0.3
    elif pattern == 2:
        marks = (np.sin(xx * 0.8) * np.sin(yy * 0.8)) > 0.5
    elif pattern == 3:
        marks = np.sin(np.hypot(yy - cy, xx - cx) * 0.9) > 0.4
    else:
        marks = np.zeros_like(mask)
    fur = np.where(marks[..., None], coat * 0.35, coat) + rng.normal(0, 8, (size, size, 3))
    image = np.where(mask[..., None], fur, background)
    image = np.clip(image, 0, 255).astype(np.uint8)
    box = np.clip([(hy - hr) / size, (hx - hr) / size, (hy + hr) / size, (hx + hr) / size], 0, 1)
    return image, box.astype(np.float32), mask.astype(np.uint8)[..., None]


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def synthetic_arrays(count: int, seed: int, label_fn: Callable[[int], int] | None = None) -> dict[str, np.ndarray]:
    """`count` drawn pets as numpy arrays; the same (count, seed) always gives the same pets."""
    rng = np.random.default_rng(seed)
    label_fn = label_fn or (lambda i: i % NUM_CLASSES)
    labels = np.array([label_fn(i) for i in range(count)], dtype=np.int32)
    images, boxes, masks = zip(*(draw_pet(int(c), rng) for c in labels))
    return {
        "image": np.stack(images),
        "label": labels,
        "bbox": np.stack(boxes),
        "has_box": np.ones(count, np.float32),
        "mask": np.stack(masks),
    }


def synthetic_source(trainval_count: int = 384, seed: int = 0) -> Source:
    """Drawn pets made on the fly. The test split is a quarter the size and, like the real
    dataset's, has no head boxes."""
    counts = {"trainval": trainval_count, "test": max(trainval_count // 4, NUM_CLASSES)}
    cache: dict[str, dict[str, np.ndarray]] = {}

    def arrays(split: str) -> dict[str, np.ndarray]:
        if split not in cache:
            data = synthetic_arrays(counts[split], seed + (0 if split == "trainval" else 1))
            if split == "test":
                data["bbox"][:] = 0.0
                data["has_box"][:] = 0.0
            cache[split] = data
        return cache[split]

    return Source(
        name="synthetic",
        description=f"synthetic drawn pets (seed {seed}, {counts['trainval']} trainval, {counts['test']} test)",
        labels={s: np.arange(counts[s], dtype=np.int32) % NUM_CLASSES for s in SPLITS},
        make={s: (lambda s=s: tf.data.Dataset.from_tensor_slices(arrays(s))) for s in SPLITS},
        pick={s: (lambda indices, s=s: tf.data.Dataset.from_tensor_slices(
            {k: v[indices] for k, v in arrays(s).items()})) for s in SPLITS},
    )


# --------------------------------------------------------------------------- folder

def folder_source(data_dir: str | os.PathLike) -> Source:
    """The dataset's original layout: images/, annotations/{trainval,test}.txt,
    annotations/trimaps/, annotations/xmls/. Images are decoded by content (the dataset has a
    GIF and an RGBA PNG named .jpg); unreadable files are skipped with one warning."""
    root = Path(data_dir).expanduser()
    for needed in ("images", "annotations/trainval.txt", "annotations/test.txt", "annotations/trimaps"):
        if not (root / needed).exists():
            raise DataUnavailable(f"{root} is not an Oxford-IIIT Pet folder: {needed} is missing. "
                                  "It needs images/ and annotations/ as in the original archives.")
    records = {split: _folder_records(root, split) for split in SPLITS}
    skipped = [name for split in SPLITS for name in records[split][1]]
    if skipped:
        log.warning("skipped %d unreadable or incomplete example(s) in %s (first: %s)",
                    len(skipped), root, ", ".join(skipped[:3]))
    for split in SPLITS:
        if not records[split][0]:
            raise DataUnavailable(f"{root}: no readable examples in the {split} split.")

    def make(split: str, indices: list[int] | None = None) -> tf.data.Dataset:
        rows = records[split][0] if indices is None else [records[split][0][i] for i in indices]
        columns = {
            "image_path": [r[0] for r in rows],
            "trimap_path": [r[1] for r in rows],
            "label": np.array([r[2] for r in rows], np.int32),
            "bbox": np.array([r[3] for r in rows], np.float32).reshape(-1, 4),
            "has_box": np.array([r[4] for r in rows], np.float32),
        }
        return tf.data.Dataset.from_tensor_slices(columns).map(_read_folder_example,
                                                                num_parallel_calls=tf.data.AUTOTUNE)

    return Source(
        name="folder",
        description=f"Oxford-IIIT Pet folder {root}",
        labels={s: np.array([r[2] for r in records[s][0]], np.int32) for s in SPLITS},
        make={s: (lambda s=s: make(s)) for s in SPLITS},
        pick={s: (lambda indices, s=s: make(s, indices)) for s in SPLITS},
    )


def _folder_records(root: Path, split: str):
    """([(image path, trimap path, label, box, has_box)], [skipped names]) for one split."""
    rows, skipped = [], []
    for line in (root / "annotations" / f"{split}.txt").read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        name, class_id = parts[0], int(parts[1])
        image_path = root / "images" / f"{name}.jpg"
        trimap_path = root / "annotations" / "trimaps" / f"{name}.png"
        if not (_readable_image(image_path) and _readable_image(trimap_path)):
            skipped.append(name)
            continue
        box = _read_head_box(root / "annotations" / "xmls" / f"{name}.xml")
        rows.append((str(image_path), str(trimap_path), class_id - 1,
                     box if box is not None else [0.0] * 4, 0.0 if box is None else 1.0))
    return rows, skipped


def _readable_image(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "cannot use this file"
        return False


def _read_head_box(xml_path: Path) -> list[float] | None:
    """The head box from a PASCAL VOC xml, normalised (ymin, xmin, ymax, xmax); None if absent."""
    if not xml_path.exists():
        return None
    try:
        tree = ET.parse(xml_path).getroot()
        width = float(tree.findtext("size/width"))
        height = float(tree.findtext("size/height"))
        bb = tree.find("object/bndbox")
        xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    except (ET.ParseError, TypeError, ValueError, AttributeError):
        return None
    # VOC pixel coordinates are 1-based and inclusive.
    box = [(ymin - 1) / height, (xmin - 1) / width, ymax / height, xmax / width]
    return [float(min(max(v, 0.0), 1.0)) for v in box]


def decode_image_file(path) -> tf.Tensor:
    """Any JPEG, PNG, GIF or BMP file as uint8 RGB [H, W, 3], whatever its extension says
    (a GIF gives its first frame, an RGBA PNG loses its alpha)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def _read_folder_example(row: dict) -> dict:
    image = decode_image_file(row["image_path"])
    trimap = tf.io.decode_png(tf.io.read_file(row["trimap_path"]), channels=1)
    return {
        "image": image,
        "label": row["label"],
        "bbox": row["bbox"],
        "has_box": row["has_box"],
        "mask": trimap_to_mask(trimap),
    }


def trimap_to_mask(trimap: tf.Tensor) -> tf.Tensor:
    """Trimap (1 pet, 2 background, 3 border) to binary uint8 (pet and border = 1)."""
    return tf.cast(tf.not_equal(trimap, 2), tf.uint8)


# --------------------------------------------------------------------------- tensorflow-datasets

TFDS_NAME = "oxford_iiit_pet"
TFDS_HOSTS = ("thor.robots.ox.ac.uk", "storage.googleapis.com")
# The builder names the split it makes from trainval.txt "train"; asking for "trainval" fails.
TFDS_SPLITS = {"trainval": "train", "test": "test"}


def tfds_source(data_dir: str | None = None) -> Source:
    """`oxford_iiit_pet` through tensorflow-datasets, downloaded and prepared on first use."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAME, data_dir=data_dir)
    if not builder.is_prepared():
        if not any(_reachable(host) for host in TFDS_HOSTS):
            raise DataUnavailable(
                f"cannot download {TFDS_NAME}: no network ({' / '.join(TFDS_HOSTS)} unreachable) and "
                f"it is not prepared in {builder.data_dir}. Ways out: "
                "--dataset folder --data-dir PATH (the original archives unpacked), "
                "or --dataset synthetic (or --profile demo).")
        log.info("downloading and preparing %s (about 800 MB, once)", TFDS_NAME)
        builder.download_and_prepare()

    skip = {"image": tfds.decode.SkipDecoding(), "segmentation_mask": tfds.decode.SkipDecoding()}
    labels = {}
    for split in SPLITS:
        label_ds = builder.as_dataset(split=TFDS_SPLITS[split], decoders=skip, shuffle_files=False)
        labels[split] = np.fromiter(label_ds.map(lambda ex: ex["label"]).as_numpy_iterator(), dtype=np.int32)

    def make(split: str, indices: list[int] | None = None) -> tf.data.Dataset:
        # A slice per example ("train[5:6]+train[9:10]"): tensorflow-datasets reads those records only.
        name = TFDS_SPLITS[split]
        wanted = name if indices is None else "+".join(f"{name}[{i}:{i + 1}]" for i in indices)
        return builder.as_dataset(split=wanted, shuffle_files=False).map(_from_tfds, num_parallel_calls=tf.data.AUTOTUNE)

    return Source(name=TFDS_NAME, description=f"tensorflow-datasets {TFDS_NAME} ({builder.data_dir})",
                  labels=labels, make={s: (lambda s=s: make(s)) for s in SPLITS},
                  pick={s: (lambda indices, s=s: make(s, indices)) for s in SPLITS})


def tfds_prepared(data_dir: str | None = None) -> bool:
    """Whether tensorflow-datasets already holds oxford_iiit_pet (so opening it downloads nothing)."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(TFDS_NAME, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 - a broken tfds folder means "not prepared"
        return False


def _from_tfds(ex: dict) -> dict:
    """A tfds example in this module's format. tfds divides the xml's 1-based corners by the
    size as they are; the folder source first shifts the top-left corner by one pixel (VOC
    pixel 1 is the image's first pixel). The same shift here makes both sources give the same box."""
    bbox = tf.cast(ex["head_bbox"], tf.float32)
    has_box = tf.cast(tf.reduce_any(bbox > 0), tf.float32)  # tfds fills a missing box with zeros
    size = tf.cast(tf.shape(ex["image"])[:2], tf.float32)
    shift = tf.stack([1.0 / size[0], 1.0 / size[1], 0.0, 0.0]) * has_box
    bbox = tf.clip_by_value(bbox - shift, 0.0, 1.0)
    return {
        "image": ex["image"],
        "label": tf.cast(ex["label"], tf.int32),
        "bbox": bbox,
        "has_box": has_box,
        "mask": trimap_to_mask(ex["segmentation_mask"]),
    }


def _reachable(host: str, port: int = 443, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- for the app

def open_source(settings: Settings) -> Source:
    """load_source, except that it never starts the 800 MB download from an app page."""
    if settings.dataset == "oxford_iiit_pet" and not tfds_prepared(settings.data_dir):
        raise DataUnavailable(f"{TFDS_NAME} is not prepared on this machine; `python train.py` "
                              "downloads it once (it needs the network), or use a folder or the "
                              "synthetic source.")
    return load_source(settings)


def source_key(settings: Settings) -> str:
    """Names a source: its kind, folder and seed (and, for drawn pets, how many are drawn)."""
    limit = settings.limit if settings.dataset == "synthetic" else None
    return f"{settings.dataset}|{settings.data_dir}|{limit}|{settings.seed}"


def data_on_this_machine(settings: Settings) -> bool:
    """A quick look (no file is read) at whether the data these settings name is here."""
    if settings.dataset == "synthetic":
        return True
    if settings.dataset == "folder":
        return bool(settings.data_dir) and (Path(settings.data_dir).expanduser() / "images").is_dir()
    return settings.dataset == TFDS_NAME and tfds_prepared(settings.data_dir)
