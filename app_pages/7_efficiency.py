"""Data efficiency: when does pretraining pay? Each task's validation metric against the number of
training images, pretrained and scratch, from the sweeps in the runs root (labcore.show.efficiency)."""
import streamlit as st

from ui import display, experiments
from labcore.show.efficiency import KEY_METRICS, REPORT_TRAIN_IMAGES, find_sweeps, report_is_approx, report_values, \
    sweep_command, sweep_of
from labcore.store.experiments import not_comparable
from labcore.show.plots import efficiency_figure
from labcore.settings import METRIC_LABELS, TASKS

st.title("Data efficiency")
st.caption("When does pretraining pay? The same runs trained on more and more images: a pretrained "
           "backbone's lead is usually largest with few labelled images.")
found = experiments.experiments()
if not found:
    experiments.empty_state()
    st.stop()
sweeps = find_sweeps(found)
if not sweeps:
    st.info("No sweep here yet: a sweep is a group of experiments that differ only in `--limit`, the number "
            "of images. Train one (the demo's, three sizes, synthetic pets) with:")
    st.code(sweep_command(experiments.runs_root()), language="bash")
    st.stop()
current = experiments.current_experiment()
default = sweeps.index(sweep_of(current, sweeps) or sweeps[0]) if current else 0
chosen = st.selectbox("Sweep", range(len(sweeps)), index=default, format_func=lambda i: sweeps[i].name,
                      key="efficiency_sweep", disabled=len(sweeps) == 1)
sweep = sweeps[chosen]
st.caption(f"Sweep **{display.escape(sweep.name)}**: {display.escape(sweep.describe())}.")
reasons = not_comparable(sweep.experiments[-1].provenance())
st.caption(f"★ the report's value on the full dataset ({REPORT_TRAIN_IMAGES:,} training images)"
           + (f"; not comparable with these runs: {display.escape('; '.join(reasons))}." if reasons else ".")
           + " Hover a point for its run's provenance.")
for task in TASKS:
    st.subheader(task.capitalize())
    st.markdown(sweep.reading(task))
    metrics = KEY_METRICS[task]
    for column, metric in zip(st.columns(len(metrics)), metrics):
        points = sweep.points(task, metric)
        lines = {init: [(p.train_images, p.value, p.hover) for p in line] for init, line in points.items()}
        note = " (read off its curves)" if report_is_approx(task, metric) else ""
        figure = efficiency_figure(f"{task}: val {METRIC_LABELS[metric]}", lines, report_values(task, metric),
                                   REPORT_TRAIN_IMAGES, note)
        with column:
            st.plotly_chart(figure, width="stretch", config=display.PLOTLY_CONFIG, key=f"efficiency_{task}_{metric}")
