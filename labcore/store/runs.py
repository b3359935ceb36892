"""The runs of one experiment folder: `<experiment>/<run id>/{config,history,metrics}.json` and
`model.keras` (labcore.store.experiments knows the experiments under a runs root).

Reading is forgiving: a missing or corrupt file in one run is reported on that run (its
`problems`) and never stops the others from loading. Reading is also wary: a folder may have
been copied from anyone, so a config.json whose values cannot be this run's (another task, a
setting out of range, a value of the wrong type) makes the run `refused`, with the reason,
and its config is not used.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from labcore.settings import NUM_CLASSES, RUN_IDS, RUNS, TASK_BACKBONES, TASK_OUTPUTS, SettingsError, \
    settings_from_dict

DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_ENV = "PETLAB_RUNS_DIR"
RUN_FILES = ("config.json", "history.json", "metrics.json", "model.keras")
PROJECT_DIR = Path(__file__).resolve().parents[2]  # where app.py and train.py are


def resolve_runs_dir(given: Path | str) -> Path:
    """A runs root as an absolute path: `~` expanded, and a relative one taken from the project
    folder, not from wherever the app or train.py was started, so both always mean the same
    folder (`streamlit run ~/petlab/app.py` from `~` reads ~/petlab/runs, where the app's
    train.py writes)."""
    return Path(os.path.normpath(PROJECT_DIR / Path(given).expanduser()))
WEIGHT_ORIGINS = ("imagenet", "synthetic-pretext", "none")
SERIES_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # a Keras loss or metric name, `lr`, `epoch_seconds`
# The config.json values the app reads, and their types (null counts as absent).
CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str, "init": str, "weights": str, "backbone": str, "outputs": list, "settings": dict, "dataset": dict,
    "versions": dict, "parameters": int, "best_epoch": int, "epochs_run": int, "seed": int,
    "train_seconds": (int, float), "finished": str}


def default_runs_dir() -> Path:
    """$PETLAB_RUNS_DIR, else runs/, resolved by `resolve_runs_dir`."""
    return resolve_runs_dir(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR)


def write_json(path: Path, data: Any) -> None:
    """Write atomically (temp file, then rename), so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_plain))
    tmp.replace(path)


def read_json(path: Path) -> Any:
    """A json file's content, or None where it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in json")


@dataclass
class Run:
    run_id: str
    path: Path
    config: dict = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    refused: str | None = None  # why its config.json cannot be used (then `config` is empty)

    @property
    def task(self) -> str:
        return self.config.get("task") or RUNS[self.run_id].task

    @property
    def init(self) -> str:
        return self.config.get("init") or RUNS[self.run_id].init

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def has_model(self) -> bool:
        return self.model_path.is_file() and self.model_path.stat().st_size > 0

    @property
    def image_size(self) -> int:
        return int(self.config.get("settings", {}).get("image_size", 224))

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    @property
    def weights(self) -> str:
        return self.config.get("weights", "unknown")

    @property
    def in_progress(self) -> bool:
        """Still being trained: read from `<experiment>/.partial/<run id>/` (see `in_progress_runs`)."""
        return self.path.parent.name == ".partial"

    @property
    def experiment(self) -> str:
        """The experiment folder it belongs to."""
        return (self.path.parent.parent if self.in_progress else self.path.parent).name

    @property
    def key(self) -> str:
        """Unique across the experiments of one root: 'demo/detection-scratch' ('demo/.partial/...'
        for its unfinished retraining)."""
        return f"{self.experiment}/{'.partial/' if self.in_progress else ''}{self.run_id}"

    @property
    def label(self) -> str:
        """How the app names the run: 'detection-pretrained (synthetic-pretext)',
        'detection-scratch (in progress: 2 of 6 epochs)'."""
        if self.in_progress:
            total = self.config.get("epochs")
            return f"{self.run_id} (in progress: {self.epochs_run}{f' of {total}' if total else ''} epochs)"
        return self.run_id if self.init == "scratch" else f"{self.run_id} ({self.weights})"

    @property
    def long_label(self) -> str:
        """The label with its experiment, where runs of several experiments meet: 'demo · detection-scratch'."""
        return f"{self.experiment} · {self.label}"


def _read_json(path: Path, problems: list[str], expect: type) -> Any:
    if not path.exists():
        problems.append(f"{path.name} is missing")
        return expect()
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problems.append(f"{path.name} is unreadable ({type(err).__name__})")
        return expect()
    if not isinstance(data, expect):
        problems.append(f"{path.name} holds a {type(data).__name__}, not a {expect.__name__}")
        return expect()
    return data


def _clean_history(history: dict, problems: list[str]) -> dict[str, list[float]]:
    clean = {}
    for key, values in history.items():
        if not SERIES_NAME.match(key):
            problems.append(f"history.json: a series named {_quoted(key)} is not a metric name")
        elif isinstance(values, list) and all(_number(v) for v in values):
            clean[key] = [float(v) if math.isfinite(v) else float("nan") for v in values]
        else:
            problems.append(f"history.json: {key} is not a list of numbers")
    return clean


def _clean_metrics(metrics: dict, problems: list[str]) -> dict[str, dict[str, float]]:
    """metrics.json's splits, each {metric name: number}; anything else named in `problems`."""
    clean = {}
    for split, values in metrics.items():
        if not isinstance(values, dict):
            problems.append(f"metrics.json: {_quoted(split)} is not a table of metrics")
            continue
        clean[split] = {k: float(v) for k, v in values.items() if _number(v)}
        if len(clean[split]) < len(values):
            problems.append(f"metrics.json: a {_quoted(split)} value is not a number")
    return clean


def check_config(run_id: str, config: dict) -> str | None:
    """Why a run folder's config.json cannot be this run's, or None where it can: the values the
    app reads must have their types, name this run's task, start and heads, and hold settings
    in range (labcore.settings.settings_from_dict)."""
    if run_id not in RUNS:
        return f"{_quoted(run_id)} is not one of the six runs"
    spec = RUNS[run_id]
    for key, kind in CONFIG_TYPES.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"{key} is a {type(value).__name__}"
    try:
        settings = settings_from_dict(config.get("settings"))
    except SettingsError as err:
        return f"settings: {err}"
    expected = {"task": spec.task, "init": spec.init, "outputs": list(spec.outputs),
                "backbone": settings.extra.get("backbone", TASK_BACKBONES[spec.task])}
    for key, value in expected.items():
        if config.get(key) not in (None, value):
            return f"{key} is {_quoted(config[key])}, not {_quoted(value)} as {run_id} has"
    if config.get("weights") not in (None, *WEIGHT_ORIGINS):
        return f"weights is {_quoted(config['weights'])}, not one of {', '.join(WEIGHT_ORIGINS)}"
    dataset = config.get("dataset") or {}
    if not all(isinstance(dataset.get(k), str) for k in ("source", "description") if k in dataset) or \
            not all(_number(dataset.get(k)) and dataset[k] >= 0 for k in ("train", "val", "test") if k in dataset):
        return "dataset does not hold its source, description and image counts"
    for key in ("parameters", "best_epoch", "epochs_run", "train_seconds"):
        if not 0 <= (config.get(key) or 0) < math.inf:
            return f"{key} is {_quoted(config[key])}, not a count or a time"
    try:
        datetime.fromisoformat(config.get("finished") or "2000-01-01")
    except ValueError:
        return "finished is not a date and time"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quoted(value: Any) -> str:
    """A stored value in a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_run(path: Path) -> Run:
    path = Path(path)
    run = Run(run_id=path.name, path=path)
    config = _read_json(path / "config.json", run.problems, dict)
    run.refused = check_config(run.run_id, config)
    # A null reads as absent: the pages ask `config.get(key, default)`.
    run.config = {} if run.refused else {k: v for k, v in config.items() if v is not None}
    run.history = _clean_history(_read_json(path / "history.json", run.problems, dict), run.problems)
    run.metrics = _clean_metrics(_read_json(path / "metrics.json", run.problems, dict), run.problems)
    if not (path / "model.keras").is_file():
        run.problems.append("model.keras is missing")
    return run


def list_runs(runs_dir: Path | str | None = None) -> list[Run]:
    """The known runs present in `runs_dir`, in the six runs' order. Half-written runs live in
    `.partial/` and are not listed."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not root.is_dir():
        return []
    return [load_run(root / run_id) for run_id in RUN_IDS if (root / run_id).is_dir()]


def partial_runs(runs_dir: Path | str) -> list[str]:
    """Run ids that were started but not finished (they resume on the next train.py)."""
    partial = Path(runs_dir) / ".partial"
    return sorted(p.name for p in partial.iterdir() if p.is_dir()) if partial.is_dir() else []


def in_progress_runs(runs_dir: Path | str, epochs: dict[str, int] | None = None) -> list[Run]:
    """The unfinished runs of an experiment folder that have finished epochs: their history so
    far (`.partial/<run id>/history.json`, written after every epoch), nothing else. `epochs`
    (run id -> the epochs asked for) goes into each one's config as `epochs`, for its label."""
    found = []
    for run_id in partial_runs(runs_dir):
        path = Path(runs_dir) / ".partial" / run_id
        if run_id not in RUNS or not (path / "history.json").is_file():
            continue
        run = Run(run_id=run_id, path=path)
        run.history = _clean_history(_read_json(path / "history.json", run.problems, dict), run.problems)
        if epochs and run_id in epochs:
            run.config["epochs"] = epochs[run_id]
        if run.epochs_run:
            found.append(run)
    return found


class ModelLoadError(RuntimeError):
    pass


def load_model(run: Run):
    """The run's Keras model, loaded in safe mode (no arbitrary code from the file), and only if
    it takes the image size and gives the heads its config.json describes (`check_model`)."""
    import keras

    from labcore.model import metrics  # noqa: F401 - registers the custom loss and metric

    if run.refused:
        raise ModelLoadError(f"{run.run_id}: config.json cannot be used ({run.refused})")
    if not run.has_model:
        raise ModelLoadError(f"{run.run_id}: model.keras is missing or empty")
    try:
        model = keras.saving.load_model(run.model_path, compile=False, safe_mode=True)
    except Exception as err:  # a damaged zip, a wrong file: any failure means "unusable"
        raise ModelLoadError(f"{run.run_id}: model.keras cannot be loaded "
                             f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})") from err
    check_model(model, run)
    return model


def check_model(model, run: Run) -> None:
    """Raises ModelLoadError unless `model` takes square RGB images of the run's size and gives
    exactly its task's heads: 37 breeds, 4 box corners, a mask of the input's size. A copied
    model.keras can be anything: a larger input than its config says is memory the app would
    spend warming it up, more classes than 37 an index past the breeds' names."""
    settings = settings_from_dict(run.config.get("settings"))
    size = run.image_size
    heads = {"label": (None, NUM_CLASSES), "bbox": (None, 4), "mask": (None, size, size, settings.mask_classes)}
    expected = {name: heads[name] for name in TASK_OUTPUTS[run.task]}
    outputs = model.output if isinstance(model.output, dict) else {}
    got = {name: tuple(tensor.shape) for name, tensor in outputs.items()}
    shape = model.input_shape
    if shape != (None, size, size, 3) or got != expected:
        raise ModelLoadError(f"{run.run_id}: model.keras takes {_shape_text(shape)} and gives "
                             f"{', '.join(f'{k} {_shape_text(v)}' for k, v in got.items()) or 'no named heads'}, "
                             f"not the {size} px images and {', '.join(expected)} heads its config.json describes")


def _shape_text(shape) -> str:
    return str(tuple(shape)).replace("None, ", "")[:60] if isinstance(shape, tuple) else "several inputs"
