"""Training histories: every loss and metric, train and val, for any runs overlaid."""
import pandas as pd
import streamlit as st

from ui import display, experiments, pickers, status
from labcore.show.plots import RUN_COLOURS, curve_figure, history_keys, lr_drops
from labcore.store.runs import Run
from labcore.settings import METRIC_LABELS, RUN_IDS

TITLES = {"loss": "total loss", "bbox_loss": "box loss", "mask_accuracy": "mask pixel accuracy"}


def curve_options_ui() -> float:
    """The smoothing strength the user chose."""
    return st.columns([1, 2])[0].slider("Smoothing", 0.0, 0.9, 0.0, 0.1,
                                        help="Exponential moving average over epochs; 0 shows the raw values.")


def draw_curves(runs: list[Run], smoothing: float) -> None:
    across = len({r.experiment for r in runs}) > 1
    histories = [(r.long_label if across else r.label, r.history) for r in runs]
    # A run keeps its colour; runs of several experiments take the colours in turn.
    colours = [RUN_COLOURS[n % len(RUN_COLOURS) if across else RUN_IDS.index(r.run_id)] for n, r in enumerate(runs)]
    keys = history_keys([h for _, h in histories])
    if not keys:
        st.info("None of these runs has a readable history.json.")
        return
    colour_key([label for label, _ in histories], colours)
    columns = st.columns(2)
    for n, key in enumerate(keys):
        title = TITLES.get(key) or METRIC_LABELS.get(key) or key.replace("_", " ")
        with columns[n % 2]:
            figure = curve_figure(key, histories, smoothing, title=title, colours=colours, legend=False)
            st.plotly_chart(figure, width="stretch", config=display.PLOTLY_CONFIG, key=f"curve_{key}")
    drops = {label: lr_drops(history.get("lr", [])) for label, history in histories}
    lines = [f"{label}: epochs {', '.join(map(str, d))}" for label, d in drops.items() if d]
    st.caption("Learning rate lowered — " + (display.escape("; ".join(lines)) if lines else "in none of these runs."))


def colour_key(labels: list[str], colours: list[str]) -> None:
    """One key for every chart below: run colours and what the line styles and markers mean."""
    swatches = " &nbsp; ".join(f'<span style="color:{c}">━━</span> {display.escape(label)}'
                               for label, c in zip(labels, colours))
    st.markdown(swatches, unsafe_allow_html=True)
    st.caption("solid: training · dashed: validation · ★ best epoch (lowest val loss) · "
               "▼ learning rate lowered by ReduceLROnPlateau")


def history_csv(runs: list[Run]) -> bytes:
    """Every run's history as one long table: experiment, run, weights, epoch, series, value."""
    columns = ["experiment", "run", "weights", "epoch", "series", "value"]
    rows = [{"experiment": r.experiment, "run": r.run_id, "weights": r.weights, "epoch": epoch, "series": key,
             "value": value}
            for r in runs for key, values in r.history.items() for epoch, value in enumerate(values, 1)]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False).encode()


def curves_with_unfinished(chosen: list[Run], smoothing: float) -> None:
    """The chosen runs' curves and, read afresh, the finished epochs of the runs still training."""
    unfinished = status.unfinished_runs()
    if unfinished:
        st.caption("Runs marked *in progress* are still training: their curves grow as epochs finish.")
    draw_curves([*chosen, *unfinished], smoothing)


st.title("Training histories")
if experiments.load_runs() or not status.unfinished_runs():
    all_runs = experiments.runs_or_stop()
    experiments.show_problems(all_runs)
    chosen = pickers.preset_many_picker(all_runs, key="hist_runs")
else:  # nothing finished yet: the runs in training are all there is to draw
    experiments.provenance_note(experiments.current_experiment())
    chosen = []
if not chosen and not status.unfinished_runs():
    st.info("Pick at least one run above.")
    st.stop()
experiments.other_provenance(chosen)
smoothing = curve_options_ui()
if status.live_training():  # redrawn every few seconds by itself, not the whole page
    st.fragment(curves_with_unfinished, run_every=status.POLL_SECONDS)(chosen, smoothing)
else:
    curves_with_unfinished(chosen, smoothing)
if chosen:
    st.download_button("Download these histories (CSV)", history_csv(chosen), file_name="histories.csv",
                       mime="text/csv")
