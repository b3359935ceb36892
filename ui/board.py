"""The class board shared by every session of this server: one `labcore.show.board.Board` per
experiment, in the server's memory only (st.cache_resource), behind one lock. The Live page adds
to it; the board redraws itself by polling (a fragment with run_every), so an upload never makes
another session rerun. Only the presenter (ui.presenter.is_presenter) may reset it or choose when
it is revealed; a visitor's request is refused, asked again at the click."""
from __future__ import annotations

import threading
import uuid
from typing import Mapping, Sequence

import pandas as pd
import streamlit as st

from labcore.show.board import (DRAWN_PETS_NOTE, MODES, Board, Tally, answer_text, breed_choices, mosaic, plural,
                                tally_csv, thumbnail)
from labcore.store.experiments import Experiment
from ui.presenter import is_presenter

POLL_SECONDS = 2
REFUSED = "Only the presenter's browser (on the machine that serves the app) can reset or reveal the board."
_SESSION = "_board_session"
_REFUSAL = "_board_refused"


class Shared:
    """A board and the lock every session takes to touch it."""

    def __init__(self) -> None:
        self.board = Board()
        self.lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def shared(experiment: str) -> Shared:
    """The board of one experiment (by its folder), the same object for every session."""
    return Shared()


def session_token() -> str:
    """This browser session's anonymous name on the board (its uploads count once each)."""
    return st.session_state.setdefault(_SESSION, uuid.uuid4().hex)


def tally(experiment: Experiment) -> Tally:
    board = shared(str(experiment.path))
    with board.lock:
        return board.board.tally()


def record(experiment: Experiment, digest: str, top5: Mapping[str, Sequence[int]], breed, picture) -> bool:
    """This session's photo on the board: the breed heads' top-5, the breed the student named,
    and the thumbnail where they opted in (`picture` None otherwise). O(1) under the lock."""
    small = thumbnail(picture) if picture is not None else None
    board = shared(str(experiment.path))
    with board.lock:
        return board.board.record(session_token(), digest, top5, breed, small)


def presenter_action(experiment: Experiment, action: str, mode: str | None = None) -> bool:
    """Reset, reveal or set the mode of the board, for the presenter only; refused (False, and
    the refusal shown on the next draw) for anyone else."""
    if not is_presenter():
        st.session_state[_REFUSAL] = REFUSED
        return False
    board = shared(str(experiment.path))
    with board.lock:
        if action == "reset":
            board.board.reset()
        elif action == "reveal":
            board.board.reveal()
        elif action == "mode":
            board.board.set_mode(mode or st.session_state.get("board_mode", "live"))
        else:
            raise ValueError(f"unknown board action {action!r}")
    return True


# --------------------------------------------------------------------------- the Live page's part

def ask_breed_and_record(experiment: Experiment, digest: str, predictions: Mapping[str, object], picture) -> None:
    """Under the Live page's answers: "What breed is it?" and the opt-in for the photo; records
    this photo on the class board with the predictions the page already has."""
    st.markdown("**Add your pet to the class board**")
    left, right = st.columns([3, 2])
    choices = [None, *breed_choices()]
    breed = left.selectbox("What breed is it?", choices, key=f"board_breed_{digest}",
                           format_func=lambda c: "— choose —" if c is None else answer_text(c),
                           help="The board scores each model's breed guesses against the breeds the class names.")
    opted_in = right.checkbox("Show my photo on the board", value=False, key=f"board_photo_{digest}",
                              help="A small thumbnail on the class board, kept in the server's memory only.")
    top5 = {run_id: [k for k, _ in pred.top5] for run_id, pred in predictions.items()
            if getattr(pred, "top5", None)}
    record(experiment, digest, top5, breed, picture if opted_in else None)
    pets = tally(experiment).pets
    said = f"Your pet is on it (breed: {answer_text(breed)}). " if breed is not None else ""
    st.caption(f"On the class board: {plural(pets, 'pet')} so far. {said}" + (
        "" if opted_in else "Your photo is not shown there, only the models' guesses and the breed you name."))


# --------------------------------------------------------------------------- drawing the board

def draw_board(experiment: Experiment) -> None:
    """The board of `experiment`, redrawn every POLL_SECONDS by itself, with the presenter's controls."""
    st.fragment(_board_body, run_every=POLL_SECONDS)(experiment)


def _board_body(experiment: Experiment) -> None:
    got = tally(experiment)
    refusal = st.session_state.pop(_REFUSAL, None)
    if refusal:
        st.error(refusal)
    # One row for the count and the presenter's controls, and the two tables side by side: the
    # slide then fits a 1280 x 720 projector without scrolling.
    count, mode, buttons = st.columns([3, 3, 2], vertical_alignment="center")
    count.markdown(f"## {plural(got.pets, 'pet')} on the board")
    if is_presenter():
        presenter_controls(experiment, got, mode, buttons)
    if experiment.settings and not experiment.provenance().real:
        st.warning(DRAWN_PETS_NOTE, icon=":material/warning:")
    if not got.shown:
        st.info("The models' answers are hidden until the presenter reveals them: guess first which ones do best!")
        return
    accuracy, favourites = st.columns([3, 2])
    if got.labelled:
        accuracy.markdown(f"**Breed accuracy on the {plural(got.labelled, 'pet')} whose breed the class named**")
        accuracy.table(pd.DataFrame(got.accuracy_rows()).set_index("task"))
    else:
        accuracy.caption("No pet has a named breed yet: answer \"What breed is it?\" on the Live page.")
    rows = got.top_breed_rows()
    if rows:
        favourites.markdown("**Each model's favourite breed**")
        favourites.table(pd.DataFrame(rows).set_index("model"))
    picture = _mosaic(str(experiment.path), got.version, got.thumbnails)
    if picture:
        st.image(picture, caption=f"{len(got.thumbnails)} photos shared by their owners (the newest first)",
                 output_format="JPEG")
    st.download_button("Download the tally (CSV, no photos)", tally_csv(got), file_name="class-board.csv",
                       mime="text/csv", key="board_csv", on_click="ignore")


@st.cache_data(show_spinner=False, max_entries=4)
def _mosaic(experiment: str, version: int, _thumbnails: tuple[bytes, ...]) -> bytes | None:
    """The shared photos as one picture, made once per change of the board."""
    return mosaic(_thumbnails)


def presenter_controls(experiment: Experiment, got: Tally, mode, buttons) -> None:
    """"live" or "after I reveal it" in `mode`, the reveal and the reset in `buttons`: drawn
    for the presenter only."""
    if st.session_state.get("board_mode") != got.mode:
        st.session_state["board_mode"] = got.mode
    mode.radio("Show the answers", list(MODES), key="board_mode", format_func=MODES.get, horizontal=True,
               on_change=presenter_action, args=(experiment, "mode"))
    if got.mode == "reveal" and not got.revealed:
        buttons.button("Reveal", icon=":material/visibility:", type="primary", key="board_reveal",
                       on_click=presenter_action, args=(experiment, "reveal"))
    buttons.button("Reset the board", icon=":material/delete:", key="board_reset",
                   on_click=presenter_action, args=(experiment, "reset"),
                   help="Clears every upload, for a new class. Nothing was ever written to disk.")
