"""The experiment the pages show: the runs root fixed at start, the sidebar picker, what its runs
learned from, and what a page shows without finished runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import streamlit as st

from labcore.store import inflight
from labcore.store.experiments import Experiment, demo_command, list_experiments, store_signature, train_command
from labcore.store.runs import Run, default_runs_dir, resolve_runs_dir
from ui.display import escape
from ui.options import app_options
from ui.presenter import may_train_here, train_here_button


EXPERIMENT_KEY = "experiment"

SHARED_PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-pets-3class"

SHARED_SECONDS = 1.0  # one look at the store serves every session's pages and status polls this long

def runs_root() -> Path:
    """The runs root, fixed when the server starts: `streamlit run app.py -- --runs-dir DIR`,
    else $PETLAB_RUNS_DIR, else runs/; a relative one is taken from the project folder, as
    train.py takes it. A visitor picks among its experiments, never a path."""
    given = app_options().runs_dir
    return resolve_runs_dir(given) if given else default_runs_dir()

@dataclass(frozen=True)
class StoreLook:
    """What the pages and the training status read of the runs root at one moment."""
    signature: tuple  # store_signature: changes whenever a run or an experiment is written
    holder: dict | None  # who holds the training lock
    plans: tuple[inflight.Training, ...]  # trainings with a plan that is not done
    log: str  # the last lines of the log of trainings the app started, while one holds the lock
    log_written: float  # that log's modification time (0 without one)


def store_look() -> StoreLook:
    """The runs root as it was at most SHARED_SECONDS ago: with a class on the pages, one read
    of the store serves every session's page runs and status polls, instead of one each."""
    return _store_look(str(runs_root()))


@st.cache_resource(ttl=SHARED_SECONDS, max_entries=4, show_spinner=False)
def _store_look(root: str) -> StoreLook:
    holder = inflight.holder(root)
    log_path = Path(root) / inflight.LOG_FILE
    log = inflight.log_tail(root) if holder else ""
    written = log_path.stat().st_mtime if log and log_path.exists() else 0.0
    return StoreLook(store_signature(root), holder, tuple(inflight.trainings(root)), log, written)


def forget_store_look() -> None:
    """Read the store afresh at the next look (after this session changed it)."""
    _store_look.clear()


def experiments() -> list[Experiment]:
    """The experiments under the runs root, newest first; re-read whenever a run file changes."""
    return _experiments(str(runs_root()), store_look().signature)

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

def damage_note() -> None:
    """Above every page: one line for each thing the chosen experiment's folder holds that cannot
    be used, naming the file and why (labcore.store.experiments); the rest of it is shown."""
    experiment = current_experiment()
    for problem in experiment.problems if experiment else []:
        st.error(escape(f"{experiment.name}: {problem}."), icon=":material/report:")

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
        st.warning(f"**{escape(run_id)}** was trained with other settings than the rest of "
                   f"**{escape(experiment.name)}**: {escape('; '.join(diff))}.")

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
    underway = store_look().holder is not None
    if experiment is None:
        if underway:
            st.info(f"A training has started in **{escape(root)}**: this page fills as its runs finish.")
            return
        here = offer_training and may_train_here()
        st.info(f"No runs in **{escape(root)}** yet. Train the six demo runs (synthetic pets, no network, "
                "a few minutes on a laptop CPU)" + (" here, or in a terminal:" if here else ":"))
        if offer_training:
            train_here_button(root, started=forget_store_look)
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

def show_problems(runs: Sequence[Run]) -> None:
    """One warning per damaged run; the others work as usual."""
    for run in runs:
        if run.problems:
            st.warning(f"**{escape(run.run_id)}** is incomplete: {escape('; '.join(run.problems))}.")

def shared_pets() -> Path | None:
    """The real 3-breed slice next to the project, where this machine has it."""
    return SHARED_PETS if (SHARED_PETS / "images").is_dir() else None
