"""Overview: the runs in one table, the report's numbers beside ours, the three questions."""
import pandas as pd
import streamlit as st

from ui import board, caches, display, experiments
from labcore.store.experiments import not_comparable
from labcore.show.board import plural
from labcore.show.report import Answer, answers, overview_rows, report_rows
from labcore.store.runs import Run
from labcore.settings import RUN_IDS


def runs_table(runs: list[Run]) -> None:
    split = st.radio("Metrics from", ["val", "test"], horizontal=True,
                     format_func={"val": "validation (as the report)", "test": "test split"}.get)
    table = pd.DataFrame(overview_rows(runs, split)).drop(columns="weights").dropna(axis="columns", how="all")
    # A static table wraps its headers to the page's width: nothing scrolls off a projector.
    st.table(table.style.format(_cell, na_rep="—").hide(axis="index"))
    if split == "test":
        st.caption("The test split has no head boxes, so box metrics appear only on validation.")


def report_table(runs: list[Run], reasons: list[str]) -> None:
    st.subheader("The report's numbers beside ours (validation)")
    if reasons:
        st.warning("**Not comparable** with the report's numbers: " + display.escape("; ".join(reasons)) + ". "
                   "The report trained on the real dataset's photos with ImageNet weights.",
                   icon=":material/warning:")
    st.table(pd.DataFrame(report_rows(runs)).style.format(_cell, na_rep="—").hide(axis="index"))
    st.caption("~ = read off the report's curves. Ours: metrics.json; box loss from the history at "
               "the best epoch. — = that run is not in the store.")


def _cell(value) -> str:
    """A table cell: st.table reads cells as markdown, so text (a run's label) is escaped."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else display.escape(value)


def draw_answer(number: int, answer: Answer) -> None:
    st.markdown(f"#### Q{number}. {answer.question}")
    st.markdown("\n".join(f"- {line}" for line in answer.lines))


st.title("Transfer learning on Oxford-IIIT Pet")
runs = experiments.runs_or_stop(offer_training=True)
experiment = experiments.current_experiment()
absent = [r for r in RUN_IDS if r not in {run.run_id for run in runs}]
st.caption(f"{len(runs)} of 6 runs in **{display.escape(experiment.path)}**"
           + (f" — not yet trained: {', '.join(absent)}" if absent else ""))
experiments.show_problems(runs)
runs_table(runs)
provenance = experiment.provenance()
report_table(runs, not_comparable(provenance))
st.subheader("The report's three questions, from your runs")
st.caption(f"Answered on experiment **{display.escape(experiment.name)}**: {display.escape(provenance.data)}.")
for n, answer in enumerate(answers(runs), 1):
    draw_answer(n, answer)


@st.cache_data(show_spinner=False, max_entries=2)
def lab_html(store: str, stamp: tuple, board_version: int | None, _runs: list[Run], _board) -> bytes:
    """The export, with the models the app has loaded (and loads into its cache what it has not)."""
    from labcore.show.export import build_html

    return build_html(_runs, f"Transfer learning on Oxford-IIIT Pet: {store}", store,
                      load=caches.shared_predictor, board=_board).encode("utf-8")


stamp = tuple((r.run_id, r.config.get("finished")) for r in runs)
tally = board.tally(experiment)
with_board = tally.pets > 0 and st.checkbox(f"Include the class board ({plural(tally.pets, 'pet')}, no photos)",
                                            key="export_board")
shown = tally if with_board else None
st.download_button("Download the lab as one HTML file", icon=":material/download:", file_name="lab.html",
                   mime="text/html", on_click="ignore",
                   data=lambda: lab_html(experiment.name, stamp, shown.version if shown else None, runs, shown),
                   help="Runs, curves, predictions with Grad-CAM, per-breed results and the three answers; "
                        "opens offline. Made when clicked, with the models this app has loaded.")
