"""Present: the lab's story as slides for a projector (1280 x 720), from the chosen experiment.

What each slide holds comes from labcore.show.slides (and the report, per-breed, Grad-CAM and
efficiency functions the other pages use); this page lays it out. Previous/next by the buttons,
the arrow keys and a presentation clicker (PageUp/PageDown); the slide is kept in the address
(?slide=N), so a reload keeps the place.
"""
import pandas as pd
import streamlit as st

from ui import board, caches, display, experiments, join
from labcore.show.efficiency import find_sweeps, sweep_of
from labcore.show.report import report_rows
from labcore.show.slides import Slide, breed_figures, efficiency_slide, question_answer, question_figure, \
    slide_number, slides_for
from labcore.store.experiments import not_comparable
from labcore.store.runs import Run

# Type a back row can read, and no scrolling sideways on a 1280 x 720 projector.
STYLE = """<style>
.stMainBlockContainer { padding-top: 3.6rem; padding-bottom: 1rem; }
.stMainBlockContainer h1 { font-size: 2.3rem; padding-top: 0; }
.stMainBlockContainer p, .stMainBlockContainer li { font-size: 1.35rem; line-height: 1.35; }
.stMainBlockContainer [data-testid="stTable"] td, .stMainBlockContainer [data-testid="stTable"] th { font-size: 1.2rem; }
.stMainBlockContainer [data-testid="stCaptionContainer"] p { font-size: 1.05rem; }
.st-key-clicker { display: none; }
</style>"""
GRADCAM_WIDTH = 260


def go_to(number: int) -> None:
    st.query_params["slide"] = str(number)


def header(number: int, deck: list[Slide]) -> None:
    """The slide's title, and back / next (the Left and Right keys); the clicker's PageUp and
    PageDown on two more buttons, hidden (a button's shortcut works while it is on the page)."""
    title, back, forward = st.columns([7, 1.7, 1.7], vertical_alignment="center")
    title.title(deck[number - 1].title)
    back.button("Back", icon=":material/arrow_back:", shortcut="Left", disabled=number == 1, key="slide_back",
                on_click=go_to, args=(number - 1,), width="stretch")
    forward.button("Next", icon=":material/arrow_forward:", shortcut="Right", disabled=number == len(deck),
                   key="slide_next", on_click=go_to, args=(number + 1,), width="stretch")
    with st.container(key="clicker"):
        st.button("Page up", shortcut="PageUp", key="slide_page_up", disabled=number == 1,
                  on_click=go_to, args=(number - 1,))
        st.button("Page down", shortcut="PageDown", key="slide_page_down", disabled=number == len(deck),
                  on_click=go_to, args=(number + 1,))


def title_slide(runs: list[Run]) -> None:
    experiment = experiments.current_experiment()
    st.markdown(f"### Experiment **{display.escape(experiment.name)}**: {len(runs)} of 6 runs")
    if experiment.settings:
        st.markdown(display.escape(experiment.provenance().sentence()) + ".")
    st.markdown("- **Pretrained or from scratch?** The same network, starting from learned weights or from noise.\n"
                "- **One task or three?** Breed, head box and pet mask: three models, or one that does all.\n"
                "- **Then your pets**: six models on the class's own photos.")


def report_slide(runs: list[Run]) -> None:
    reasons = not_comparable(experiments.current_experiment().provenance())
    if reasons:
        st.caption("**Not comparable** with the report's numbers: " + "; ".join(reasons) + ".")
    st.table(pd.DataFrame(report_rows(runs)).style.format(_cell, na_rep="—").hide(axis="index"))


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def question_slide(runs: list[Run], key: str) -> None:
    words, chart = st.columns([1, 1], gap="large")
    words.markdown("\n".join(f"- {line}" for line in question_answer(runs, key).short))
    figure = question_figure(runs, key)
    if figure is not None:
        chart.plotly_chart(figure, width="stretch", config=display.PLOTLY_CONFIG, key=f"slide_{key}")


def breeds_slide(runs: list[Run]) -> None:
    shown = breed_figures(runs)
    for column, (label, got) in zip(st.columns(max(len(shown), 1)), shown):
        if isinstance(got, str):
            column.info(f"{label}: {got}")
        else:
            column.plotly_chart(got, width="stretch", config=display.PLOTLY_CONFIG, key=f"slide_breeds_{label}")


@st.cache_resource(show_spinner="Tracing Grad-CAM…", max_entries=2)
def gradcam_pictures(experiment: str, stamp: tuple, _pair: tuple[Run, ...], _predictors: dict):
    """Two runs' prediction and Grad-CAM on the first test image, as the export draws them."""
    from labcore.show.gallery import GalleryUnavailable, preset_examples

    try:
        return preset_examples(_pair, 1, GRADCAM_WIDTH, dict(_predictors))
    except GalleryUnavailable as err:
        return str(err)


def gradcam_slide(runs: list[Run]) -> None:
    pair = tuple(r for r in runs if r.run_id in ("detection-pretrained", "detection-scratch") and r.has_model)
    if not pair:
        return
    predictors = {r.run_id: caches.predictor(r) for r in pair}
    if None in predictors.values():
        return  # caches.predictor said why
    stamp = tuple(r.model_path.stat().st_mtime_ns for r in pair)
    got = gradcam_pictures(str(pair[0].path.parent), stamp, pair, predictors)
    if isinstance(got, str):
        st.info(got)
        return
    shown, caption = got
    st.caption(f"{display.escape(caption)}. Red: prediction; heat: where the breed head looked for its top breed.")
    for column, run, pictures in zip(st.columns(len(pair), gap="large"), pair, shown):
        column.markdown(f"**{run.label}**")
        for picture_column, picture in zip(column.columns(len(pictures)), pictures):
            picture_column.image(picture.picture, caption=picture.caption)


def efficiency_slide_ui(runs: list[Run]) -> None:
    experiment = experiments.current_experiment()
    sweep = sweep_of(experiment, find_sweeps(experiments.experiments()))
    reading, figure = efficiency_slide(sweep)
    st.markdown(reading)
    st.plotly_chart(figure, width="stretch", config=display.PLOTLY_CONFIG, key="slide_efficiency")


DRAW = {"title": title_slide, "report": report_slide, "breeds": breeds_slide, "gradcam": gradcam_slide,
        "efficiency": efficiency_slide_ui,
        "join": lambda runs: join.draw_join(experiments.current_experiment()),
        "board": lambda runs: board.draw_board(experiments.current_experiment()),
        **{key: (lambda runs, key=key: question_slide(runs, key)) for key in ("q1", "q2", "q3")}}

st.set_page_config(initial_sidebar_state="collapsed")  # the projector's whole width for the slide
st.html(STYLE)
runs = experiments.load_runs()
if not runs:
    experiments.runs_or_stop()
experiment = experiments.current_experiment()
deck = slides_for(runs, sweep_of(experiment, find_sweeps(experiments.experiments())))
number = slide_number(st.query_params.get("slide"), len(deck))
if st.query_params.get("slide") != str(number):
    st.query_params["slide"] = str(number)
header(number, deck)
slide = deck[number - 1]
if slide.missing_line():
    st.info(slide.missing_line())
DRAW[slide.key](runs)
st.caption(f"Slide {number} of {len(deck)} · ← → or a presentation clicker · the sidebar (›, top left) "
           "picks the experiment")
