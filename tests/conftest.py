"""Shared fixtures. Everything runs offline on synthetic data; tests that read the shared real
slice (../shared/data/oxford-pets-3class) skip where it is absent. Browser tests (the app, the
export, the load script) skip where Chromium or Playwright is missing, but fail instead with
PETLAB_REQUIRE_BROWSER=1, which CI (.ci/run) sets: there a skip would hide a broken install."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as labcore.quiet sets it

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_PETS = ROOT.parent / "shared" / "data" / "oxford-pets-3class"
REQUIRE_BROWSER_ENV = "PETLAB_REQUIRE_BROWSER"

# The smallest demo that still exercises every run and every file: tiny backbones, 32 px,
# 64 images, 2 epochs. (The real backbones are built in test_architectures and trained in
# test_train_cli; tracing EfficientNetB3's train step alone takes ~40 s on 2 cores.)
TINY_DEMO_ARGS = ["--profile", "demo", "--tiny-backbones", "--limit", "64", "--epochs", "2", "--image-size", "32"]


def run_train(args: list[str], runs_dir: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run train.py as a user would, in a subprocess."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args, "--runs-dir", str(runs_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Let the app's model-warming threads (ui.caches.warm_models, daemon threads) finish before
    the interpreter exits: a daemon thread still inside TensorFlow's C++ code at exit is ended by
    a forced unwind that TensorFlow catches, and the process aborts ("FATAL: exception not
    rethrown", exit 134) after every test has passed."""
    import threading

    for thread in [t for t in threading.enumerate() if t.name == "warm-models"]:
        thread.join(300)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended and not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """A runs root holding one experiment, `demo`, with all six runs, made by
    `train.py --profile demo` (tiny overrides); what train.py printed is kept beside it, in
    `train.out` and `train.stderr`. Tests must not modify it: copy it first."""
    root = tmp_path_factory.mktemp("demo") / "runs"
    result = run_train(TINY_DEMO_ARGS, root)
    assert result.returncode == 0, result.stderr[-3000:]
    # What it printed, for the tests of its output.
    (root.parent / "train.out").write_text(result.stdout)
    (root.parent / "train.stderr").write_text(result.stderr)
    return root


@pytest.fixture(scope="session")
def demo_runs(demo_store) -> Path:
    """The `demo` experiment's folder: the six run folders."""
    return demo_store / "demo"


@pytest.fixture
def demo_runs_copy(demo_store, tmp_path) -> Path:
    """A private copy of the demo experiment (inside a copy of its runs root), free to damage."""
    copy = tmp_path / "runs"
    shutil.copytree(demo_store, copy)
    return copy / "demo"


@dataclass
class SweepStore:
    root: Path  # holds demo-n64 and demo-n96: the tiny demo's settings at --limit 64 and 96
    resumed: subprocess.CompletedProcess  # the train.py --sweep-limit 64 96 that trained demo-n96


@pytest.fixture(scope="session")
def sweep_store(demo_store, tmp_path_factory) -> SweepStore:
    """A tiny sweep over training-set sizes, made as a sweep interrupted after its first size is
    finished: the demo experiment (--limit 64) copied as demo-n64, then `train.py ... --sweep-limit
    64 96` trains what is missing. Tests must not modify it."""
    root = tmp_path_factory.mktemp("sweep") / "runs"
    shutil.copytree(demo_store / "demo", root / "demo-n64")
    args = [a for a in TINY_DEMO_ARGS if a not in ("--limit", "64")]
    resumed = run_train([*args, "--sweep-limit", "64", "96"], root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return SweepStore(root, resumed)


@pytest.fixture(scope="session")
def two_experiments(demo_store, tmp_path_factory) -> Path:
    """A runs root with the tiny `demo` experiment and `photos`: detection-scratch and
    segmentation-scratch trained on a small photo folder in the original layout."""
    base = tmp_path_factory.mktemp("two")
    root = base / "runs"
    shutil.copytree(demo_store, root)
    pets = write_pets_folder(base / "pets")
    result = run_train(["--profile", "quick", "--tiny-backbones", "--dataset", "folder", "--data-dir", str(pets.root),
                        "--only", "detection-scratch", "segmentation-scratch", "--epochs", "1", "--image-size", "32",
                        "--name", "photos"], root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def save_forty_breed_model(path: Path, size: int = 32) -> None:
    """A detection model.keras whose breed head has 40 classes, not 37 (what a copied folder may
    hold): tiny, `size` px."""
    import keras

    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, {"label": keras.layers.Dense(40, activation="softmax", name="label")(pooled),
                         "bbox": keras.layers.Dense(4, activation="sigmoid", name="bbox")(pooled)}).save(path)


def find_chromium() -> str | None:
    """Debian's Chromium, as every browser test finds it: on PATH as chromium (or chromium-browser)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser(api: str) -> tuple[object, str]:
    """Playwright's `playwright.<api>` module and the Chromium to drive with it. Where either is
    missing: a skip saying what to install, or a failure where PETLAB_REQUIRE_BROWSER=1."""
    missing = []
    try:
        module = importlib.import_module(f"playwright.{api}")
    except ImportError:
        missing.append("playwright is not installed (pip install -r requirements.txt)")
    chromium = find_chromium()
    if chromium is None:
        missing.append("Debian's chromium is not on PATH (apt-get install chromium)")
    if missing:
        reason = "; ".join(missing)
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_BROWSER_ENV}=1 requires the browser tests to run", pytrace=False)
        pytest.skip(reason)
    return module, chromium


@pytest.fixture
def shared_pets() -> Path:
    if not SHARED_PETS.is_dir():
        pytest.skip(f"the shared real slice is not here ({SHARED_PETS})")
    return SHARED_PETS


@dataclass
class PetsFolder:
    root: Path
    names: list[str]  # trainval names, in list order
    odd: tuple[str, str]  # the GIF and the RGBA PNG, both named .jpg
    trainval: int
    test: int
    boxes: dict[str, tuple[int, int, int, int]]  # name -> the xml's (xmin, ymin, xmax, ymax), 1-based pixels
    size: tuple[int, int] = (80, 60)  # every picture's (width, height): not square, so an x/y swap shows


def write_pets_folder(root: Path) -> PetsFolder:
    """A small dataset in the original layout under `root`: three breeds, JPEG photos plus a GIF
    and an RGBA PNG named .jpg (as the real dataset has), trimaps, VOC xmls (one missing)."""
    import numpy as np
    from PIL import Image

    from labcore.data.sources import draw_pet

    for sub in ("images", "annotations/trimaps", "annotations/xmls"):
        (root / sub).mkdir(parents=True)
    width, height = 80, 60
    rng = np.random.default_rng(0)
    breeds = [("Abyssinian", 1), ("american_bulldog", 2), ("Bengal", 6)]
    lists = {"trainval": [], "test": []}
    boxes = {}
    for breed, class_id in breeds:
        for n in range(1, 9):
            name = f"{breed}_{n}"
            split = "trainval" if n <= 6 else "test"
            image, box, mask = draw_pet(class_id - 1, rng)
            picture = Image.fromarray(image).resize((width, height))
            if name == "Abyssinian_1":
                picture.save(root / "images" / f"{name}.jpg", format="GIF")
            elif name == "Abyssinian_2":
                picture.convert("RGBA").save(root / "images" / f"{name}.jpg", format="PNG")
            else:
                picture.save(root / "images" / f"{name}.jpg", format="JPEG")
            trimap = np.where(mask[..., 0] == 1, 1, 2).astype(np.uint8)
            Image.fromarray(trimap).resize((width, height), Image.NEAREST).save(
                root / "annotations" / "trimaps" / f"{name}.png")
            if split == "trainval" and name != "Bengal_3":
                ymin, xmin, ymax, xmax = box
                boxes[name] = (int(xmin * width) + 1, int(ymin * height) + 1, int(xmax * width), int(ymax * height))
                corners = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), boxes[name]))
                (root / "annotations" / "xmls" / f"{name}.xml").write_text(
                    f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
                    f"<object><name>{'cat' if class_id != 2 else 'dog'}</name><bndbox>{corners}</bndbox>"
                    "</object></annotation>")
            lists[split].append(f"{name} {class_id} {1 if class_id != 2 else 2} 1")
    for split, lines in lists.items():
        (root / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    names = [line.split()[0] for line in lists["trainval"]]
    return PetsFolder(root, names, ("Abyssinian_1", "Abyssinian_2"), len(lists["trainval"]), len(lists["test"]),
                      boxes, (width, height))


@pytest.fixture
def pets_folder(tmp_path) -> PetsFolder:
    """A small dataset in the original layout (see `write_pets_folder`), written afresh per test."""
    return write_pets_folder(tmp_path / "pets")


@dataclass
class TfdsPets:
    folder: PetsFolder  # the original layout it was prepared from (without the GIF, see below)
    data_dir: Path  # the tensorflow-datasets data folder that holds oxford_iiit_pet


@pytest.fixture(scope="session")
def tfds_pets(tmp_path_factory) -> TfdsPets:
    """oxford_iiit_pet prepared offline by tensorflow-datasets' own builder: its download step
    is made to return a folder in the original layout (the builder reads `images/` and
    `annotations/` under what `download_and_extract` gives it for each archive).

    The GIF is left out of the lists: the builder stores an image's bytes as they are (unless
    the file is on its own list of known bad files) and decodes them with
    `tf.image.decode_image`, which gives a GIF four dimensions, so reading that example fails.
    The RGBA PNG stays: it decodes to RGB."""
    import tensorflow_datasets as tfds

    base = tmp_path_factory.mktemp("tfds")
    folder = write_pets_folder(base / "pets")
    gif = folder.odd[0]
    listing = folder.root / "annotations" / "trainval.txt"
    listing.write_text("".join(f"{line}\n" for line in listing.read_text().splitlines() if line.split()[0] != gif))
    folder.names.remove(gif)
    folder.boxes.pop(gif)
    folder.trainval -= 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfds.download.DownloadManager, "download_and_extract",
                      lambda self, urls: {key: str(folder.root) for key in urls})
        tfds.builder("oxford_iiit_pet", data_dir=str(base / "tfds")).download_and_prepare()
    return TfdsPets(folder, base / "tfds")


class Killed(Exception):
    """Stands in for a process killed at the end of an epoch (start_and_kill)."""


@pytest.fixture
def start_and_kill(tiny_settings):
    """start_and_kill(run_id, runs_dir, checkpoint_seconds=0.0, kill_after=2, extra=(), **overrides):
    start a 4-epoch run of `tiny_settings` (with `overrides`) on 64 drawn pets and kill it after
    epoch `kill_after` (`extra`: more callbacks, before the kill); returns (spec, settings,
    source) to resume it. With checkpoint_seconds 0 (these epochs take a second), a checkpoint
    after every epoch but the last."""
    import keras

    from labcore.data.sources import synthetic_source
    from labcore.settings import RUNS
    from labcore.train.training import train_run

    class KillAfterEpoch(keras.callbacks.Callback):
        def __init__(self, epoch: int):
            super().__init__()
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.epoch:
                raise Killed()

    def start(run_id: str, runs_dir: Path, checkpoint_seconds: float = 0.0, kill_after: int = 2, extra=(),
              **overrides):
        settings = tiny_settings.with_overrides(epochs=4, limit=64, early_stopping_patience=50, **overrides)
        source = synthetic_source(64, seed=0)
        with pytest.raises(Killed):
            train_run(RUNS[run_id], settings, source, runs_dir, lambda m: None,
                      extra_callbacks=[*extra, KillAfterEpoch(kill_after)], checkpoint_seconds=checkpoint_seconds)
        return RUNS[run_id], settings, source

    return start


@pytest.fixture
def tiny_settings():
    """Settings for a tiny model on synthetic data: quick enough for every test."""
    from labcore.settings import PROFILES

    return PROFILES["demo"].with_overrides(image_size=32, epochs=3, limit=96, dense_units=(32,),
                                           branch_units=16, decoder_filters=(16, 16, 8, 8),
                                           extra={"backbone": "tiny"})
