"""Experiments: one folder per set of settings under the runs root.

    <runs root>/<experiment>/<run id>/{config,history,metrics}.json, model.keras
    <runs root>/<experiment>/experiment.json   (the settings every run in it was asked with)

An experiment's name defaults to its profile (`demo`, `quick`, `report`). A store written
before experiments existed (`<runs root>/<run id>/`) opens as one experiment named after its
folder; nothing is moved.

This module also says where an experiment's numbers came from (its provenance) and why they
cannot stand beside the report's (`not_comparable`).

A folder may come from anyone (a USB stick): what cannot be used (experiment.json's settings out
of range, a run whose config.json cannot be that run's, a plan naming other runs) is left out
and named in the experiment's `problems`, one line each, for its pages to show.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from labcore.store.runs import DEFAULT_RUNS_DIR, Run, list_runs, partial_runs, read_json, resolve_runs_dir, write_json
from labcore.settings import FULL_SPLIT_SIZES, PROFILES, RUN_IDS, Settings, SettingsError, settings_from_dict

EXPERIMENT_FILE = "experiment.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Settings that change how a run is computed, not what it learns: never a reason to retrain.
NOT_COMPARED = frozenset({"profile", "weights_dir", "feature_cache"})
DATA_WORDS = {"synthetic": "drawn pets (synthetic)", "folder": "Oxford-IIIT Pet photos (folder)",
              "oxford_iiit_pet": "Oxford-IIIT Pet photos (tensorflow-datasets)"}


def sweep_name(name: str, size: int | str) -> str:
    """The experiment of one size: 'demo', 96 -> 'demo-n96'."""
    return f"{name}-n{size}"


def check_name(name: str) -> str | None:
    """Why `name` cannot name an experiment folder, or None when it can."""
    if not NAME_PATTERN.match(name):
        return (f"experiment name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit")
    if name in RUN_IDS:
        return f"experiment name {name!r} is a run id; pick another name"
    return None


@dataclass
class Experiment:
    name: str
    path: Path
    runs: list[Run] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # experiment.json, else the first run's
    legacy: bool = False  # runs directly in the root, from before experiments
    problems: list[str] = field(default_factory=list)  # what in the folder is left out, and why

    @property
    def key(self) -> str:
        """Unique within a root: the folder's name ('.' for an older root-level store)."""
        return "." if self.legacy else self.name

    @property
    def partial(self) -> list[str]:
        return partial_runs(self.path)

    @property
    def finished(self) -> str | None:
        """When its newest run finished (ISO date-time), or None."""
        stamps = [r.config.get("finished") for r in self.runs if isinstance(r.config.get("finished"), str)]
        return max(stamps) if stamps else None

    def provenance(self) -> "Provenance":
        counts = next((r.config["dataset"] for r in self.runs
                       if isinstance(r.config.get("dataset"), dict)), {})
        return Provenance.of(self.settings, counts, self.finished)

    def describe(self) -> str:
        """One line for a picker: 'demo — drawn pets, 64 px, 6 epochs, synthetic-pretext, 2026-11-25'."""
        suffix = (" (older layout)" if self.legacy else "") + (" (damaged)" if self.problems else "")
        if not self.settings:
            return f"{self.name}{suffix} — no finished run yet"
        return f"{self.name}{suffix} — {self.provenance().short()}"

    def odd_runs(self) -> dict[str, list[str]]:
        """Runs trained with settings other than the experiment's: run id -> the differences."""
        if not self.settings:
            return {}
        expected = settings_from_dict(self.settings)
        odd = {}
        for run in self.runs:
            stored = run.config.get("settings")
            if isinstance(stored, dict):
                diff = differences(stored, expected)
                if diff:
                    odd[run.run_id] = diff
        return odd


@dataclass
class Provenance:
    """Where an experiment's numbers came from, in the words the app and the export use."""

    dataset: str
    data_dir: str | None
    counts: dict[str, int]  # train / val / test images
    image_size: int
    epochs: int
    weights: str  # where the pretrained runs' backbones start from
    limit: int | None
    tiny: bool
    finished: str | None

    @classmethod
    def of(cls, settings: dict[str, Any], counts: dict[str, Any], finished: str | None) -> "Provenance":
        s = settings_from_dict(settings)
        return cls(dataset=s.dataset, data_dir=s.data_dir,
                   counts={k: int(counts[k]) for k in ("train", "val", "test") if isinstance(counts.get(k), int)},
                   image_size=s.image_size, epochs=s.epochs + s.fine_tune_epochs, weights=s.weights,
                   limit=s.limit, tiny=s.extra.get("backbone") == "tiny", finished=finished)

    @property
    def data(self) -> str:
        words = DATA_WORDS.get(self.dataset, self.dataset)
        return f"{words} from {self.data_dir}" if self.dataset == "folder" and self.data_dir else words

    @property
    def real(self) -> bool:
        return self.dataset != "synthetic"

    def short(self) -> str:
        data = {"synthetic": "drawn pets", "folder": "photos (folder)",
                "oxford_iiit_pet": "photos (tfds)"}.get(self.dataset, self.dataset)
        parts = [data, f"{self.image_size} px", epochs_text(self.epochs), f"{self.weights} weights"]
        if self.finished:
            parts.append(self.finished[:10])
        return ", ".join(parts)

    def sentence(self) -> str:
        """'drawn pets (synthetic): 246 train, 62 val, 96 test images; 64 px; up to 6 epochs; ...'"""
        images = ", ".join(f"{n:,} {split}" for split, n in self.counts.items())
        return (f"{self.data}: {images or 'image counts unknown'} images; {self.image_size} px; "
                f"up to {epochs_text(self.epochs)}; pretrained runs start from {self.weights} weights")


def epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def not_comparable(p: Provenance) -> list[str]:
    """Why these numbers cannot stand beside the report's (empty when they can)."""
    reasons = []
    if not p.real:
        reasons.append("trained on drawn pets, not photos")
    else:
        trainval = p.counts.get("train", 0) + p.counts.get("val", 0)
        if trainval and trainval < FULL_SPLIT_SIZES["trainval"]:
            reasons.append(f"{trainval:,} of the dataset's {FULL_SPLIT_SIZES['trainval']:,} trainval images")
    if p.image_size != 224:
        reasons.append(f"{p.image_size} px images, not 224")
    if p.weights != "imagenet":
        reasons.append(f"pretrained runs start from {p.weights} weights, not ImageNet")
    if p.epochs < PROFILES["report"].epochs:
        reasons.append(f"at most {epochs_text(p.epochs)}, not up to {PROFILES['report'].epochs}")
    if p.tiny:
        reasons.append("tiny stand-in backbones (for tests)")
    return reasons


def synthetic_warning(experiment: str) -> str:
    """What a live prediction from a run that learned drawn pets is worth, and the way out, as
    markdown (`experiment`, a folder's name, comes escaped for it)."""
    return (f"The models of **{experiment}** learned drawn pets: their guess on a real photo means "
            "nothing. Train on the real data with `python train.py --profile quick` (tensorflow-datasets), "
            "or `--dataset folder --data-dir PATH` for the unpacked archives.")


def differences(stored: dict[str, Any], asked: Settings) -> list[str]:
    """The settings in which a stored run differs from the ones asked for, as
    'image_size: 128 stored, 64 asked'. Settings a run predates count at their defaults."""
    have, want = settings_from_dict(stored).to_dict(), asked.to_dict()
    return [f"{key}: {have[key]!r} stored, {want[key]!r} asked"
            for key in want if key not in NOT_COMPARED and have.get(key) != want[key]]


def experiment_path(root: Path | str, name: str) -> Path:
    return Path(root) / name


def load_experiment(path: Path | str, legacy: bool = False) -> Experiment:
    from labcore.store.inflight import PLAN_FILE, read_training

    path = Path(path)
    problems = []
    runs = []
    for run in list_runs(path):
        if run.refused:
            problems.append(f"{run.run_id}/config.json: {run.refused}; the run is left out")
        else:
            runs.append(run)
    settings = _recorded_settings(path, problems)
    if not settings:
        settings = next((r.config["settings"] for r in runs if isinstance(r.config.get("settings"), dict)), {})
    if (path / ".partial" / PLAN_FILE).is_file() and read_training(path) is None:
        problems.append(f".partial/{PLAN_FILE} cannot be read or names runs that are not the six; it is ignored")
    return Experiment(name=path.name, path=path, runs=runs, settings=settings, legacy=legacy, problems=problems)


def _recorded_settings(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """experiment.json's settings where they can be used; else None, and the reason in `problems`."""
    if not (path / EXPERIMENT_FILE).is_file():
        return None
    stored = read_json(path / EXPERIMENT_FILE)
    settings = stored.get("settings") if isinstance(stored, dict) else None
    if settings is None:
        problems.append(f"{EXPERIMENT_FILE} cannot be read or holds no settings")
        return None
    try:
        settings_from_dict(settings)
    except SettingsError as err:
        problems.append(f"{EXPERIMENT_FILE}: {err}; it is ignored")
        return None
    return settings


def list_experiments(root: Path | str) -> list[Experiment]:
    """The experiments under `root`, newest first. Runs right in `root` (the older layout)
    make one more experiment, named after the folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [load_experiment(root, legacy=True)] if _holds_runs(root) else []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and child.name not in RUN_IDS and _holds_runs(child):
            found.append(load_experiment(child))
    return sorted(found, key=lambda e: e.finished or "", reverse=True)


def _holds_runs(folder: Path) -> bool:
    return (folder / EXPERIMENT_FILE).is_file() or any((folder / r).is_dir() for r in RUN_IDS) \
        or bool(partial_runs(folder))


def store_signature(root: Path | str) -> tuple:
    """Changes whenever a run or an experiment under `root` is written: a cache key."""
    root = Path(root)
    if not root.is_dir():
        return ()
    stamp = []
    for folder in [root, *(p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))]:
        for path in [folder / EXPERIMENT_FILE, *(folder / r / f for r in RUN_IDS
                                                 for f in ("config.json", "history.json", "metrics.json",
                                                           "model.keras"))]:
            try:
                stamp.append((str(path.relative_to(root)), path.stat().st_mtime_ns))
            except OSError:
                continue
        partial = folder / ".partial"
        if partial.is_dir():
            stamp.append((str(partial.relative_to(root)), tuple(partial_runs(folder))))
    return tuple(stamp)


def record_settings(path: Path, name: str, settings: Settings) -> None:
    """Write the experiment's settings (experiment.json): what every run in it is trained with."""
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / EXPERIMENT_FILE, {
        "name": name, "settings": settings.to_dict(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def train_command(settings: dict[str, Any], experiment: str, root: Path | str | None = None,
                  only: Sequence[str] = ()) -> str:
    """The train.py command that trains more runs into this experiment with its own settings
    (so they are not refused for differing): the profile plus every setting that differs.
    Shell-quoted: a data folder or runs root with spaces or quotes stays one word."""
    s = settings_from_dict(settings)
    base = PROFILES.get(s.profile, PROFILES["report"])
    words = ["python", "train.py", "--profile", s.profile if s.profile in PROFILES else "report"]
    flags = (("dataset", "--dataset"), ("data_dir", "--data-dir"), ("image_size", "--image-size"),
             ("epochs", "--epochs"), ("limit", "--limit"), ("weights", "--weights"),
             ("mask_classes", "--mask-classes"), ("fine_tune_epochs", "--fine-tune-epochs"), ("seed", "--seed"))
    for key, flag in flags:
        value = getattr(s, key)
        if value != getattr(base, key) and value is not None:
            words += [flag, str(value)]
    for key, flag in (("mixed_precision", "--mixed-precision"), ("jit_compile", "--jit-compile")):
        if getattr(s, key) and not getattr(base, key):
            words.append(flag)
    if s.extra.get("backbone") == "tiny":
        words.append("--tiny-backbones")
    if experiment != s.profile:
        words += ["--name", experiment]
    words += runs_dir_words(root)
    if only:
        words += ["--only", *only]
    return shlex.join(words)


def demo_command(root: Path | str | None = None) -> str:
    """The train.py command that trains the demo's six runs into `root`, shell-quoted."""
    return shlex.join(["python", "train.py", "--profile", "demo", *runs_dir_words(root)])


def app_command(root: Path | str | None = None) -> str:
    """The command that starts the app on the runs root `root`, shell-quoted."""
    words = runs_dir_words(root)
    return shlex.join(["streamlit", "run", "app.py", *(["--", *words] if words else [])])


def runs_dir_words(root: Path | str | None) -> list[str]:
    """`--runs-dir ROOT` as words of a command (join them with shlex.join), left out for the
    default root (`runs` in the project folder, however it is written)."""
    default = root is None or resolve_runs_dir(root) == resolve_runs_dir(DEFAULT_RUNS_DIR)
    return [] if default else ["--runs-dir", str(root)]
