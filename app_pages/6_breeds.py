"""Per-breed results: which breeds each run gets right, and which it confuses, from confusion.json
(the breeds the split holds only)."""
import math

import pandas as pd
import streamlit as st

from ui import display, experiments, pickers
from labcore.show.breeds import accuracy_figure, confusion_figure
from labcore.store.confusion import Confusion, ConfusionUnavailable, load_confusion
from labcore.store.runs import Run
from labcore.settings import TASK_OUTPUTS


@st.cache_data(show_spinner=False)
def confusions(run_path: str, mtime: int | None) -> dict[str, Confusion] | str:
    """A run's counts by split, or the sentence saying why there are none."""
    try:
        return load_confusion(run_path)
    except ConfusionUnavailable as err:
        return str(err)


def draw_run(run: Run, split: str, name: str) -> None:
    st.markdown(f"**{display.escape(name)}**")
    path = run.path / "confusion.json"
    got = confusions(str(run.path), path.stat().st_mtime_ns if path.exists() else None)
    if isinstance(got, str):
        st.info(display.escape(got + "."))
        return
    if split not in got:
        st.info(f"confusion.json has no {split} counts; retrain to see this.")
        return
    confusion = got[split]
    parts = confusion.cat_dog_accuracy()
    # Two to a row: four in a row are cut to "49…" in a half-page column at 1280 px.
    figures = [("accuracy", confusion.accuracy(), f"over {confusion.total} images"),
               ("cats", parts["cat_accuracy"], "breed accuracy on the cat breeds"),
               ("dogs", parts["dog_accuracy"], "breed accuracy on the dog breeds"),
               ("cat vs dog", parts["species_accuracy"], "how often the prediction is at least the right species")]
    for row in (figures[:2], figures[2:]):
        for column, (label, value, help_) in zip(st.columns(2), row):
            column.metric(label, "—" if math.isnan(value) else f"{value:.1%}",
                          help=help_ if not math.isnan(value) else f"no such images in this split ({help_})")
    st.plotly_chart(accuracy_figure(confusion, f"accuracy per breed ({split})"), width="stretch",
                    config=display.PLOTLY_CONFIG, key=f"acc_{run.key}")
    st.plotly_chart(confusion_figure(confusion, f"confusion ({split}): true ↓, predicted →"), width="stretch",
                    config=display.PLOTLY_CONFIG, key=f"conf_{run.key}")
    pairs = confusion.top_confused(10)
    st.markdown("**The ten most confused pairs** (true → predicted: images)")
    if pairs:
        st.table(pd.DataFrame([{"true": t, "predicted": p, "images": n} for t, p, n in pairs]))
    else:
        st.caption("No breed was confused with another.")


st.title("Per-breed results")
runs = [r for r in experiments.runs_or_stop() if "label" in (r.config.get("outputs") or TASK_OUTPUTS[r.task])]
if not runs:
    st.info("No run in the store has a breed head (detection and multitask runs do).")
    st.stop()
run_a, run_b = pickers.preset_pair_picker(runs, key="breeds")
split = st.radio("Split", ["test", "val"], horizontal=True, key="breeds_split",
                 format_func={"val": "validation", "test": "test"}.get)
pair = [r for r in (run_a, run_b) if r]
across = len({r.experiment for r in pair}) > 1
experiments.other_provenance(pair)
for column, run in zip(st.columns(len(pair), gap="large"), pair):
    with column:
        draw_run(run, split, run.long_label if across else run.label)
