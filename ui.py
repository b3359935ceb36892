"""Streamlit pieces every page shares: the experiment picker and its provenance note, the empty
state, run pickers and the cached loaders (experiments, models, data). Nothing here imports TensorFlow at import time, so a
page that needs no model loads none."""
from __future__ import annotations

import argparse
import gc
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import streamlit as st

from labcore.experiments import Experiment, list_experiments, store_signature, train_command
from labcore.report import PRESETS
from labcore.runs import Run, default_runs_dir

if TYPE_CHECKING:
    from labcore.inference import Predictor
    from labcore.settings import Settings
    from labcore.showcase import ShownImages
    from labcore.sources import Source

EXPERIMENT_KEY = "experiment"
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


# --------------------------------------------------------------------------- the experiments

def runs_root() -> Path:
    """The runs root, fixed when the server starts: `streamlit run app.py -- --runs-dir DIR`,
    else $PETLAB_RUNS_DIR, else runs/. A visitor picks among its experiments, never a path."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-dir")
    given = parser.parse_known_args(sys.argv[1:])[0].runs_dir
    return Path(given).expanduser() if given else default_runs_dir()


def experiments() -> list[Experiment]:
    """The experiments under the runs root, newest first; re-read whenever a run file changes."""
    root = runs_root()
    return _experiments(str(root), store_signature(root))


@st.cache_data(show_spinner=False)
def _experiments(root: str, signature: tuple) -> list[Experiment]:
    return list_experiments(root)


def experiment_picker() -> Experiment | None:
    """Sidebar list of the experiments; drawn once in app.py so the choice holds across pages.
    The choice is also kept in the address (?experiment=NAME), so a link opens the same one."""
    found = experiments()
    if not found:
        return None
    keys = [e.key for e in found]
    if st.session_state.get(EXPERIMENT_KEY) not in keys:
        asked = st.query_params.get(EXPERIMENT_KEY)
        st.session_state[EXPERIMENT_KEY] = asked if asked in keys else keys[0]
    by_key = {e.key: e for e in found}
    chosen = st.sidebar.selectbox("Experiment", keys, key=EXPERIMENT_KEY, format_func=lambda k: by_key[k].describe(),
                                  help=f"The experiments train.py wrote under {runs_root()}/ "
                                       "(one folder per set of settings).")
    st.query_params[EXPERIMENT_KEY] = chosen
    return by_key[chosen]


def current_experiment() -> Experiment | None:
    by_key = {e.key: e for e in experiments()}
    return by_key.get(st.session_state.get(EXPERIMENT_KEY)) or next(iter(by_key.values()), None)


def load_runs() -> list[Run]:
    """The chosen experiment's runs."""
    experiment = current_experiment()
    return experiment.runs if experiment else []


def other_runs() -> list[Run]:
    """The runs of every experiment but the chosen one, for comparisons across experiments."""
    chosen = current_experiment()
    return [r for e in experiments() if chosen is None or e.key != chosen.key for r in e.runs]


def runs_or_stop() -> list[Run]:
    """The chosen experiment's runs, with its provenance shown; or the empty state and the end of the page."""
    runs = load_runs()
    if not runs:
        empty_state()
        st.stop()
    provenance_note(current_experiment())
    return runs


def provenance_note(experiment: Experiment) -> None:
    """What the runs learned from, under every page's title, and which runs break ranks."""
    if experiment.settings:
        st.caption(f"Experiment **{escape(experiment.name)}**: {escape(experiment.provenance().sentence())}.")
    for run_id, diff in experiment.odd_runs().items():
        st.warning(f"**{run_id}** was trained with other settings than the rest of **{escape(experiment.name)}**: "
                   f"{'; '.join(diff)}.")


def other_provenance(runs: Sequence[Run]) -> None:
    """Provenance of every other experiment that the chosen runs come from."""
    chosen = current_experiment()
    shown = {r.path.parent for r in runs} - ({chosen.path} if chosen else set())
    for experiment in experiments():
        if experiment.path in shown and experiment.settings:
            st.caption(f"Experiment **{escape(experiment.name)}**: {escape(experiment.provenance().sentence())}.")


def empty_state() -> None:
    root = runs_root()
    where = "" if str(root) == "runs" else f" --runs-dir {root}"
    experiment = current_experiment()
    if experiment is None:
        st.info(f"No runs in **{escape(root)}** yet. Train the six demo runs (synthetic pets, no network, "
                "a few minutes on a laptop CPU) with:")
        st.code(DEMO_COMMAND + where, language="bash")
        st.caption("Then reload this page. `python train.py --help` lists the real-data profiles.")
        return
    st.info(f"No finished runs in experiment **{escape(experiment.name)}** yet. Train them with:")
    st.code(train_command(experiment.settings, experiment.name, root) if experiment.settings
            else DEMO_COMMAND + where, language="bash")
    if experiment.partial:
        st.caption(f"Started but not finished: {escape(', '.join(experiment.partial))} "
                   "(the same command resumes them).")


def show_problems(runs: Sequence[Run]) -> None:
    """One warning per damaged run; the others work as usual."""
    for run in runs:
        if run.problems:
            st.warning(f"**{run.run_id}** is incomplete: {'; '.join(run.problems)}.")


def label_of(runs: Sequence[Run], long: bool = False):
    """A format_func for run-key widgets: the run's label, with its experiment where `long`."""
    labels = {r.key: (r.long_label if long else r.label) for r in runs}
    return lambda key: labels.get(key, key)


# --------------------------------------------------------------------------- run pickers

def across_experiments_ui(key: str) -> list[Run]:
    """A toggle that adds other experiments' runs to a picker; returns those runs (or none)."""
    others = other_runs()
    if not others:
        return []
    on = st.toggle("Add runs from other experiments", key=f"{key}_across",
                   help="Put a run of another experiment beside this one's, e.g. the same run "
                        "trained on drawn pets and on photos.")
    return others if on else []


def preset_pair_picker(runs: Sequence[Run], key: str) -> tuple[Run, Run | None]:
    """A preset (pretrained vs scratch, single- vs multi-task) or any two runs, of this
    experiment or, with the toggle, of others too; returns them."""
    pool = [*runs, *across_experiments_ui(key)]
    long = len({r.experiment for r in pool}) > 1
    keys = [r.key for r in pool]
    by_key = {r.key: r for r in pool}
    here = {r.run_id: r.key for r in runs}
    presets = {name: (here[a], here[b]) for name, (a, b) in PRESETS.items() if a in here and b in here}
    first, second = f"{key}_a", f"{key}_b"
    if st.session_state.get(first) not in keys:
        st.session_state[first] = keys[0]
    if st.session_state.get(second) not in keys:
        st.session_state[second] = keys[1] if len(keys) > 1 else keys[0]

    def apply_preset() -> None:
        pair = presets.get(st.session_state[f"{key}_preset"])
        if pair:
            st.session_state[first], st.session_state[second] = pair

    cols = st.columns([2, 2, 2])
    cols[0].selectbox("Preset", ["choose the two runs"] + list(presets), key=f"{key}_preset",
                      on_change=apply_preset,
                      help="Presets appear when both of their runs are in the experiment.")
    a = cols[1].selectbox("Run A", keys, key=first, format_func=label_of(pool, long))
    b = cols[2].selectbox("Run B", keys, key=second, format_func=label_of(pool, long))
    if a == b:
        st.caption("Pick two different runs to compare them; showing one.")
        return by_key[a], None
    return by_key[a], by_key[b]


def preset_many_picker(runs: Sequence[Run], key: str) -> list[Run]:
    """A preset or any runs (default: all of this experiment's), for overlaid curves."""
    pool = [*runs, *across_experiments_ui(key)]
    long = len({r.experiment for r in pool}) > 1
    keys = [r.key for r in pool]
    here = {r.run_id: r.key for r in runs}
    presets = {name: [here[p] for p in pair if p in here] for name, pair in PRESETS.items()}
    presets = {name: chosen for name, chosen in presets.items() if len(chosen) == 2}
    default = [r.key for r in runs]
    st.session_state[key] = [k for k in st.session_state.get(key, default) if k in keys]

    def apply_preset() -> None:
        chosen = presets.get(st.session_state[f"{key}_preset"])
        st.session_state[key] = chosen if chosen else default

    st.columns([1, 2])[0].selectbox("Preset", ["all runs of this experiment"] + list(presets),
                                     key=f"{key}_preset", on_change=apply_preset)
    # Pills wrap onto more lines where a multiselect would hide the long run names.
    chosen = st.pills("Runs", keys, selection_mode="multi", key=key, format_func=label_of(pool, long))
    return [r for r in pool if r.key in chosen]


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
    loaded = Predictor.from_run(_run)
    freeze_long_lived()
    return loaded


def freeze_long_lived() -> None:
    """Streamlit runs a full garbage collection after every script run; with TensorFlow and
    the models in memory it walked ~500k objects, 0.24 CPU-s per run, more than three 224 px
    forward passes. Those objects live as long as the models: moved out of the collector's
    sight once a model is loaded, so each run's collection walks only what came after.
    Unfrozen and collected first, so a model the cache has let go (Keras models hold reference
    cycles) is freed, not frozen forever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


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
    from labcore.examples import source_key as key

    return key(settings)


def experiment_images(experiment: Path, settings: "Settings") -> "ShownImages | None":
    """An experiment's test images: from its data where this machine has it, else from the
    showcase stored with it; or one sentence with the way out, and None."""
    from labcore.showcase import ShowcaseUnavailable, experiment_images as images

    try:
        return images(experiment, settings, opener=lambda s: _source(source_key(s), s))
    except ShowcaseUnavailable as err:
        st.info(escape(str(err)))
        st.code(err.command, language="bash")
        return None


def shared_pets() -> Path | None:
    """The real 3-breed slice next to the project, where this machine has it."""
    return SHARED_PETS if (SHARED_PETS / "images").is_dir() else None
