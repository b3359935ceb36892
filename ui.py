"""Streamlit pieces every page shares: the run-store picker, the empty state, run pickers and
the cached loaders (runs, models, data). Nothing here imports TensorFlow at import time, so a
page that needs no model loads none."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import streamlit as st

from labcore.report import PRESETS
from labcore.runs import RUN_FILES, Run, default_runs_dir, list_runs, partial_runs

if TYPE_CHECKING:
    from labcore.inference import Predictor
    from labcore.settings import Settings
    from labcore.sources import Source

RUNS_DIR_KEY = "runs_dir"
DEMO_COMMAND = "python train.py --profile demo"
SHARED_PETS = Path(__file__).resolve().parent.parent / "shared" / "data" / "oxford-pets-3class"
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# --------------------------------------------------------------------------- text

_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark


def escape(text: str) -> str:
    """User-given text (a file name, a typed path) for st.markdown and its kin, shown as the
    characters it is: every ASCII punctuation mark backslash-escaped (CommonMark allows it for
    all of them), so no link, image, emphasis, `:emoji:`, `:red[colour]` or `$maths$` forms;
    line breaks become spaces, so no new block starts."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


# --------------------------------------------------------------------------- the run store

def runs_dir_picker() -> Path:
    """Sidebar box for the run store; drawn once in app.py so it holds across pages."""
    if RUNS_DIR_KEY not in st.session_state:
        st.session_state[RUNS_DIR_KEY] = str(default_runs_dir())
    st.sidebar.text_input("Run store (folder)", key=RUNS_DIR_KEY,
                          help="The folder train.py wrote to. Default: runs/, or $PETLAB_RUNS_DIR.")
    return runs_dir()


def runs_dir() -> Path:
    return Path(st.session_state.get(RUNS_DIR_KEY) or default_runs_dir()).expanduser()


def load_runs() -> list[Run]:
    """The runs in the chosen store, re-read whenever one of their files changes."""
    root = runs_dir()
    return _load_runs(str(root), _store_signature(root))


def _store_signature(root: Path) -> tuple:
    if not root.is_dir():
        return ()
    stamp = []
    for run in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for name in RUN_FILES:
            path = run / name
            stamp.append((run.name, name, path.stat().st_mtime_ns if path.exists() else None))
    return tuple(stamp)


@st.cache_data(show_spinner=False)
def _load_runs(root: str, signature: tuple) -> list[Run]:
    return list_runs(root)


def runs_or_stop() -> list[Run]:
    """The store's runs, or the empty state and the end of the page."""
    runs = load_runs()
    if not runs:
        empty_state()
        st.stop()
    return runs


def empty_state() -> None:
    root = runs_dir()
    where = "" if str(root) == "runs" else f" --runs-dir {root}"
    st.info(f"No runs in **{escape(root)}** yet. Train the six demo runs (synthetic pets, no network, "
            "a few minutes on a laptop CPU) with:")
    st.code(DEMO_COMMAND + where, language="bash")
    st.caption("Then reload this page. `python train.py --help` lists the real-data profiles.")
    if root.is_dir() and partial_runs(root):
        st.caption(f"Started but not finished: {escape(', '.join(partial_runs(root)))} "
                   "(the same command resumes them).")


def show_problems(runs: Sequence[Run]) -> None:
    """One warning per damaged run; the others work as usual."""
    for run in runs:
        if run.problems:
            st.warning(f"**{run.run_id}** is incomplete: {'; '.join(run.problems)}.")


def label_of(runs: Sequence[Run]):
    """A format_func for run-id widgets: run ids shown with their weights origin."""
    labels = {r.run_id: r.label for r in runs}
    return lambda run_id: labels.get(run_id, run_id)


# --------------------------------------------------------------------------- run pickers

def preset_pair_picker(runs: Sequence[Run], key: str) -> tuple[Run, Run | None]:
    """A preset (pretrained vs scratch, single- vs multi-task) or any two runs; returns them."""
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    presets = {name: pair for name, pair in PRESETS.items() if all(p in ids for p in pair)}
    first, second = f"{key}_a", f"{key}_b"
    if st.session_state.get(first) not in ids:
        st.session_state[first] = ids[0]
    if st.session_state.get(second) not in ids:
        st.session_state[second] = ids[1] if len(ids) > 1 else ids[0]

    def apply_preset() -> None:
        pair = presets.get(st.session_state[f"{key}_preset"])
        if pair:
            st.session_state[first], st.session_state[second] = pair

    cols = st.columns([2, 2, 2])
    cols[0].selectbox("Preset", ["choose the two runs"] + list(presets), key=f"{key}_preset",
                      on_change=apply_preset,
                      help="Presets appear when both of their runs are in the store.")
    a = cols[1].selectbox("Run A", ids, key=first, format_func=label_of(runs))
    b = cols[2].selectbox("Run B", ids, key=second, format_func=label_of(runs))
    if a == b:
        st.caption("Pick two different runs to compare them; showing one.")
        return by_id[a], None
    return by_id[a], by_id[b]


def preset_many_picker(runs: Sequence[Run], key: str) -> list[Run]:
    """A preset or any runs (default: all of them), for overlaid curves."""
    ids = [r.run_id for r in runs]
    presets = {name: [p for p in pair if p in ids] for name, pair in PRESETS.items()}
    presets = {name: chosen for name, chosen in presets.items() if len(chosen) == 2}
    st.session_state[key] = [i for i in st.session_state.get(key, ids) if i in ids]

    def apply_preset() -> None:
        chosen = presets.get(st.session_state[f"{key}_preset"])
        st.session_state[key] = chosen if chosen else ids

    st.columns([1, 2])[0].selectbox("Preset", ["all runs"] + list(presets), key=f"{key}_preset",
                                     on_change=apply_preset)
    # Pills wrap onto more lines where a multiselect would hide the long run names.
    chosen = st.pills("Runs", ids, selection_mode="multi", key=key, format_func=label_of(runs))
    return [r for r in runs if r.run_id in chosen]


# --------------------------------------------------------------------------- models

def predictor(run: Run) -> "Predictor | None":
    """The run's compiled predictor, loaded once per model file; one error line if unusable."""
    from labcore.runs import ModelLoadError

    if not run.has_model:
        st.error(escape(f"{run.run_id}: no model.keras in {run.path}."))
        return None
    try:
        return _predictor(str(run.path), run.model_path.stat().st_mtime_ns, run)
    except ModelLoadError as err:
        st.error(escape(str(err)))
        return None


@st.cache_resource(show_spinner="Loading the model…", max_entries=12)
def _predictor(path: str, mtime: int, _run: Run) -> "Predictor":
    from labcore.inference import Predictor

    _keep_kernels_warm()
    return Predictor.from_run(_run)


def _keep_kernels_warm() -> None:
    """Streamlit calls keras.backend.clear_session() after every script run, and that clears
    TensorFlow's kernel cache: each cached model then re-optimises its graph on its next call
    (measured on the live page: 1.0 s instead of 30 ms for EfficientNetB3, on every new photo).
    This app keeps its models across reruns on purpose (st.cache_resource), so once one is
    loaded, that clean-up is switched off for the process."""
    import keras

    keras.backend.clear_session = _no_clear_session


def _no_clear_session(*args, **kwargs) -> None:
    """Stands in for keras.backend.clear_session in the app process (see _keep_kernels_warm)."""


# --------------------------------------------------------------------------- data

def source_or_none(settings: "Settings") -> "Source | None":
    """The data source for these settings, or one error line saying why not."""
    from labcore.sources import DataUnavailable

    try:
        return _source(source_key(settings), settings)
    except DataUnavailable as err:
        st.error(escape(str(err)))
        return None


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=4)
def _source(key: str, _settings: "Settings") -> "Source":
    from labcore.examples import open_source

    return open_source(_settings)


@st.cache_data(show_spinner="Reading images…", max_entries=16)
def examples(_source: "Source", source_key: str, split: str, indices: tuple[int, ...]) -> list[dict]:
    """Unbatched examples (numpy dicts, full size) of one split, in the order asked."""
    from labcore.data import raw_examples

    return raw_examples(_source, split, list(indices))


def source_key(settings: "Settings") -> str:
    return f"{settings.dataset}|{settings.data_dir}|{settings.limit}|{settings.seed}"


def shared_pets() -> Path | None:
    """The real 3-breed slice next to the project, where this machine has it."""
    return SHARED_PETS if (SHARED_PETS / "images").is_dir() else None
