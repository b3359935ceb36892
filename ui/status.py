"""The training under way, above every page: which runs are finished, training or queued, and
the time left; the pages redraw as runs finish."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from labcore.store import inflight
from labcore.store.experiments import train_command
from labcore.store.runs import Run, in_progress_runs
from labcore.show.text import code_span
from ui.display import escape
from ui.experiments import StoreLook, current_experiment, experiments, runs_root, store_look


POLL_SECONDS = 3  # how often a page looks at a training under way

IDLE_POLL_SECONDS = 10  # how often it looks for one starting (from a terminal, another tab)

_SHOWN = "_training_shown"  # the store's state the page was last drawn from

def training_status() -> None:
    """Drawn by app.py above every page: the trainings under way in this runs root (which runs
    wait, which epoch the running ones are at, the time left), or one that stopped. It looks
    again every few seconds by itself, and reruns the whole page when a run finishes or a
    training starts or ends, so the pages fill without a reload."""
    look = store_look()
    st.session_state[_SHOWN] = _store_state(look)
    busy = look.holder is not None or any(t.state == "training" for t in look.plans)
    (_status_busy if busy else _status_idle)()

def _store_state(look: StoreLook) -> tuple:
    """What the pages are drawn from: the store's files, who trains it, each plan's state."""
    return (look.signature, (look.holder or {}).get("pid"), tuple((t.name, t.state) for t in look.plans))

@st.fragment(run_every=POLL_SECONDS)
def _status_busy() -> None:
    _draw_status()

@st.fragment(run_every=IDLE_POLL_SECONDS)
def _status_idle() -> None:
    _draw_status()

def _draw_status() -> None:
    root, look = runs_root(), store_look()
    holder = look.holder
    if _store_state(look) != st.session_state.get(_SHOWN):
        st.rerun(scope="app")
    if holder and not any(t.state == "training" and t.pid == holder.get("pid") for t in look.plans):
        st.info(f"train.py (process {escape(holder.get('pid', '?'))}) has started in **{escape(root)}**: it loads "
                "TensorFlow and the data, then measures its estimate…", icon=":material/hourglass_top:")
    unchecked = inflight.lock_unsupported(root)
    if unchecked:
        st.caption(f"The training lock in **{escape(root)}** cannot be checked ({escape(unchecked)}): this "
                   "filesystem has no file locks, so train.py cannot train into it, and a training shown here "
                   "is judged by its process alone.")
    for training in look.plans:
        draw_training(training, root)
    if holder and look.log and look.log_written >= holder.get("started", 0):
        with st.expander("train.py's output (last lines)"):
            st.code(look.log, language=None)

def draw_training(training: "inflight.Training", root: Path) -> None:
    """One plan: a progress bar and which runs are finished, training (at which epoch) and queued."""
    name = escape(training.name)
    unfinished = [r.run_id for r in training.runs if r.state != "finished"]
    if training.state == "stopped":
        found = {e.path: e for e in experiments()}.get(training.experiment)
        command = train_command(found.settings, found.name, root) if found and found.settings else None
        st.warning(f"The training of experiment **{name}** stopped before it finished (process "
                   f"{training.pid} is gone): {len(unfinished)} of {len(training.runs)} runs unfinished "
                   f"({escape(', '.join(unfinished))}). Run it again to resume from the last finished epoch"
                   + (f": {code_span(command)}" if command else "."), icon=":material/error:")
        return
    if training.state == "elsewhere":
        st.caption(f"Experiment **{name}** is being trained on {escape(training.host)} (process "
                   f"{training.pid}); the pages show the runs it has finished.")
        return
    epochs = sum(r.epochs for r in training.runs) or 1
    done = sum(r.epochs_done for r in training.runs)
    finished = training.of_state("finished")
    running = ", ".join(f"**{escape(r.run_id)}** " + (f"epoch {r.epochs_done} of {r.epochs} done" if r.epochs_done
                                              else "preparing (data, backbone, first steps)")
                        for r in training.of_state("training"))
    queued = escape(", ".join(r.run_id for r in training.of_state("queued")))
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
