"""Streamlit pieces every page shares: the experiment picker and its provenance note, the empty
state, run pickers and the cached loaders (experiments, models, data). Nothing here imports TensorFlow at import time, so a
page that needs no model loads none."""
from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import streamlit as st

from labcore import inflight
from labcore.experiments import Experiment, demo_command, list_experiments, store_signature, train_command
from labcore.report import PRESETS
from labcore.runs import Run, default_runs_dir, in_progress_runs
from labcore.settings import PROFILE_HELP

if TYPE_CHECKING:
    from labcore.inference import Predictor
    from labcore.settings import Settings
    from labcore.showcase import ShownImages
    from labcore.sources import Source

EXPERIMENT_KEY = "experiment"
SHARED_PETS = Path(__file__).resolve().parent.parent / "shared" / "data" / "oxford-pets-3class"
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
POLL_SECONDS = 3  # how often a page looks at a training under way
IDLE_POLL_SECONDS = 10  # how often it looks for one starting (from a terminal, another tab)
_SHOWN = "_training_shown"  # the store's state the page was last drawn from


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


def runs_or_stop(offer_training: bool = False) -> list[Run]:
    """The chosen experiment's runs, with its provenance shown; or the empty state (with
    `offer_training`, the button that trains the demo here) and the end of the page."""
    runs = load_runs()
    if not runs:
        empty_state(offer_training)
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


def empty_state(offer_training: bool = False) -> None:
    """What a page shows without finished runs: the command that trains them or, with
    `offer_training` and a browser on this machine, a button that trains the demo here."""
    root = runs_root()
    experiment = current_experiment()
    underway = inflight.holder(root) is not None
    if experiment is None:
        if underway:
            st.info(f"A training has started in **{escape(root)}**: this page fills as its runs finish.")
            return
        here = offer_training and may_train_here()
        st.info(f"No runs in **{escape(root)}** yet. Train the six demo runs (synthetic pets, no network, "
                "a few minutes on a laptop CPU)" + (" here, or in a terminal:" if here else ":"))
        if offer_training:
            train_here_button(root)
        st.code(demo_command(root), language="bash")
        st.caption("The pages fill as the runs finish, whichever way they are trained. "
                   "`python train.py --help` lists the real-data profiles.")
        return
    if underway:
        st.info(f"No finished runs in experiment **{escape(experiment.name)}** yet: "
                "the training under way fills this page as its runs finish.")
        return
    st.info(f"No finished runs in experiment **{escape(experiment.name)}** yet. Train them with:")
    st.code(train_command(experiment.settings, experiment.name, root) if experiment.settings
            else demo_command(root), language="bash")
    if experiment.partial:
        st.caption(f"Started but not finished: {escape(', '.join(experiment.partial))} "
                   "(the same command resumes them).")


# --------------------------------------------------------------------------- training from the app

def client_address() -> str | None:
    """The browser's address as the server's socket sees it (None where unknown, e.g. in
    AppTest). Not `st.context.ip_address`: that gives None for a loopback browser too, so it
    cannot tell this machine from an unknown one. Streamlit 1.67 keeps the peer's address on
    the session's client, where its own local-only features read it."""
    from streamlit.runtime import exists, get_instance
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not exists():
        return None
    client = get_instance().get_client(ctx.session_id)
    context = getattr(client, "client_context", None)
    return getattr(context, "remote_ip", None)


def may_train_here() -> bool:
    """Only a browser on the serving machine may start training (SPEC); others get the command."""
    return inflight.is_loopback(client_address())


def train_here_button(root: Path) -> None:
    if not may_train_here():
        st.caption("Training from this page is for a browser on the machine that serves the app; "
                   "on that machine, run:")
        return
    st.button("Train the demo here", type="primary", icon=":material/play_arrow:", on_click=_start_demo,
              args=(str(root),), help="Runs train.py in the background on this machine: closing the page "
                                      "does not stop it, and one training at a time trains a runs folder.")
    st.caption(f"Quick estimate: {PROFILE_HELP['demo']} (this machine: {os.cpu_count()} cores). Once "
               f"started, train.py measures its own estimate, shown at the top; its output goes to "
               f"{escape(root / inflight.LOG_FILE)}. Or in a terminal:")


def _start_demo(root: str) -> None:
    if may_train_here():  # asked again at the click, not only when the button was drawn
        inflight.start_demo(root)


def training_status() -> None:
    """Drawn by app.py above every page: the trainings under way in this runs root (which runs
    wait, which epoch the running ones are at, the time left), or one that stopped. It looks
    again every few seconds by itself, and reruns the whole page when a run finishes or a
    training starts or ends, so the pages fill without a reload."""
    root = runs_root()
    holder, plans = inflight.holder(root), inflight.trainings(root)
    st.session_state[_SHOWN] = _store_state(root, holder, plans)
    busy = holder is not None or any(t.state == "training" for t in plans)
    (_status_busy if busy else _status_idle)()


def _store_state(root: Path, holder: dict | None, plans: Sequence[inflight.Training]) -> tuple:
    """What the pages are drawn from: the store's files, who trains it, each plan's state."""
    return (store_signature(root), (holder or {}).get("pid"), tuple((t.name, t.state) for t in plans))


@st.fragment(run_every=POLL_SECONDS)
def _status_busy() -> None:
    _draw_status()


@st.fragment(run_every=IDLE_POLL_SECONDS)
def _status_idle() -> None:
    _draw_status()


def _draw_status() -> None:
    root = runs_root()
    holder, plans = inflight.holder(root), inflight.trainings(root)
    if _store_state(root, holder, plans) != st.session_state.get(_SHOWN):
        st.rerun(scope="app")
    if holder and not any(t.state == "training" and t.pid == holder.get("pid") for t in plans):
        st.info(f"train.py (process {holder.get('pid', '?')}) has started in **{escape(root)}**: it loads "
                "TensorFlow and the data, then measures its estimate…", icon=":material/hourglass_top:")
    for training in plans:
        draw_training(training, root)
    log = inflight.log_tail(root)
    if holder and log and (root / inflight.LOG_FILE).stat().st_mtime >= holder.get("started", 0):
        with st.expander("train.py's output (last lines)"):
            st.code(log, language=None)


def draw_training(training: "inflight.Training", root: Path) -> None:
    """One plan: a progress bar and which runs are finished, training (at which epoch) and queued."""
    name = escape(training.name)
    unfinished = [r.run_id for r in training.runs if r.state != "finished"]
    if training.state == "stopped":
        found = {e.path: e for e in experiments()}.get(training.experiment)
        command = train_command(found.settings, found.name, root) if found and found.settings else None
        st.warning(f"The training of experiment **{name}** stopped before it finished (process "
                   f"{training.pid} is gone): {len(unfinished)} of {len(training.runs)} runs unfinished "
                   f"({', '.join(unfinished)}). Run it again to resume from the last finished epoch"
                   + (f": `{command}`" if command else "."), icon=":material/error:")
        return
    if training.state == "elsewhere":
        st.caption(f"Experiment **{name}** is being trained on {escape(training.host)} (process "
                   f"{training.pid}); the pages show the runs it has finished.")
        return
    epochs = sum(r.epochs for r in training.runs) or 1
    done = sum(r.epochs_done for r in training.runs)
    finished = training.of_state("finished")
    running = ", ".join(f"**{r.run_id}** " + (f"epoch {r.epochs_done} of {r.epochs} done" if r.epochs_done
                                              else "preparing (data, backbone, first steps)")
                        for r in training.of_state("training"))
    queued = ", ".join(r.run_id for r in training.of_state("queued"))
    left = inflight.eta_text(training.eta_seconds)
    st.progress(min(done / epochs, 1.0),
                text=f"Training experiment **{name}**: {len(finished)} of {len(training.runs)} runs finished, "
                     f"{left} (started {inflight.clock(training.started)}, process {training.pid})")
    st.caption(f"Training now: {running or '—'}" + (f" · queued: {queued}" if queued else "")
               + ". The time left is train.py's estimate at the pace of the runs finished so far.")


def live_training() -> "inflight.Training | None":
    """The chosen experiment's plan while it trains, else None."""
    experiment = current_experiment()
    training = inflight.read_training(experiment.path) if experiment else None
    return training if training and training.state == "training" else None


def unfinished_runs() -> list[Run]:
    """The chosen experiment's runs still in training, with the epochs they have finished."""
    experiment = current_experiment()
    if experiment is None:
        return []
    training = inflight.read_training(experiment.path)
    return in_progress_runs(experiment.path, {r.run_id: r.epochs for r in training.runs} if training else None)


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
        with st.spinner("Loading the model…"):  # drawn only if it takes half a second
            return _predictor(str(run.path), run.model_path.stat().st_mtime_ns, run)
    except ModelLoadError as err:
        st.error(escape(str(err)))
        return None


def warm_models() -> None:
    """Load and warm the chosen experiment's models in a background thread, once per set of
    model files, so the first upload is answered as fast as the later ones (it waited for six
    models to load and trace: 22.7 s against 7.6 s). A page that asks for a model meanwhile
    waits for that one only (the cache computes each key once)."""
    experiment = current_experiment()
    runs = [r for r in experiment.runs if r.has_model] if experiment else []
    if runs:
        # TensorFlow is imported here, on the script's thread, before the warming thread starts:
        # two threads importing it at once can deadlock in Python's import locks (seen as
        # `_DeadlockError ... tensorflow.python.trackable` and a Live page that never drew).
        # app.py calls this after the page has drawn, so the import delays no page.
        import labcore.inference  # noqa: F401

        _warming(tuple((str(r.path), r.model_path.stat().st_mtime_ns) for r in runs), runs)


@st.cache_resource(show_spinner=False, max_entries=4)
def _warming(models: tuple, _runs: list[Run]) -> threading.Thread:
    thread = threading.Thread(target=_warm, args=(_runs,), name="warm-models", daemon=True)
    thread.start()
    return thread


def _warm(runs: list[Run]) -> None:
    from labcore.runs import ModelLoadError

    for run in runs:
        try:
            _predictor(str(run.path), run.model_path.stat().st_mtime_ns, run)
        except (ModelLoadError, OSError):
            pass  # the page that shows this run says why, when it asks for it


# No spinner here: the warming thread has no page to draw one on (`predictor` draws it).
@st.cache_resource(show_spinner=False, max_entries=12)
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
