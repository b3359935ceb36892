"""The runs of one experiment folder: `<experiment>/<run id>/{config,history,metrics}.json` and
`model.keras` (labcore.store.experiments knows the experiments under a runs root).

Reading is forgiving: a missing or corrupt file in one run is reported on that run (its
`problems`) and never stops the others from loading.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcore.settings import RUN_IDS, RUNS

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
        if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
            clean[key] = [float(v) if math.isfinite(v) else float("nan") for v in values]
        else:
            problems.append(f"history.json: {key} is not a list of numbers")
    return clean


def load_run(path: Path) -> Run:
    path = Path(path)
    run = Run(run_id=path.name, path=path)
    run.config = _read_json(path / "config.json", run.problems, dict)
    run.history = _clean_history(_read_json(path / "history.json", run.problems, dict), run.problems)
    run.metrics = _read_json(path / "metrics.json", run.problems, dict)
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
    """The run's Keras model, loaded in safe mode (no arbitrary code from the file)."""
    import keras

    from labcore.model import metrics  # noqa: F401 - registers the custom loss and metric

    if not run.has_model:
        raise ModelLoadError(f"{run.run_id}: model.keras is missing or empty")
    try:
        return keras.saving.load_model(run.model_path, compile=False, safe_mode=True)
    except Exception as err:  # a damaged zip, a wrong file: any failure means "unusable"
        raise ModelLoadError(f"{run.run_id}: model.keras cannot be loaded "
                             f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})") from err
