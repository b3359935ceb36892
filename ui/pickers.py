"""Run pickers: a preset pair or any runs, of this experiment or others."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from labcore.show.report import PRESETS
from labcore.store.runs import Run
from ui.display import escape
from ui.experiments import other_runs


def label_of(runs: Sequence[Run], long: bool = False, markdown: bool = False):
    """A format_func for run-key widgets: the run's label, with its experiment where `long`;
    escaped for widgets that read their options as markdown (pills; not selectboxes)."""
    labels = {r.key: (r.long_label if long else r.label) for r in runs}
    return lambda key: escape(labels.get(key, key)) if markdown else labels.get(key, key)

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
    chosen = st.pills("Runs", keys, selection_mode="multi", key=key, format_func=label_of(pool, long, markdown=True))
    return [r for r in pool if r.key in chosen]
