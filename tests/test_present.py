"""The Present page and the class board in the app (AppTest): slides by the address and the
buttons, the board filled from the Live page, and the presenter-only controls refused at the
click to anyone else. The keyboard, the QR code and real peers: tests/test_browser_class.py."""
import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from labcore.show.board import DRAWN_PETS_NOTE, breed_choices
from labcore.store.runs import RUNS_DIR_ENV
from test_app import PAGES, ROOT, TIMEOUT, downloads, texts  # noqa: F401 (a fixture)
from ui import board as board_ui

PRESENT = "app_pages/8_present.py"
LIVE = PAGES[3]


@pytest.fixture(autouse=True)
def fresh_board():
    """Every test starts with empty boards (they live as long as the process)."""
    board_ui.shared.clear()
    yield
    board_ui.shared.clear()


def open_at(page: str, root, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def the_board(root) -> "board_ui.Shared":
    return board_ui.shared(str(root / "demo"))


def photo_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (48, 64, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_address_opens_a_slide_and_the_buttons_move_through_the_deck(demo_store, monkeypatch):
    at = open_at(PRESENT, demo_store, monkeypatch, slide="3")
    assert titles(at) == ["Q1. Does pretraining help detection?"]
    assert len(at.get("plotly_chart")) == 1
    at.button(key="slide_next").click().run()
    assert titles(at) == ["Q2. Does pretraining help segmentation?"] and at.query_params["slide"] == "4"
    at.button(key="slide_page_up").click().run()  # the clicker's "back"
    at.button(key="slide_back").click().run()
    assert titles(at) == ["Six runs beside the report"] and at.query_params["slide"] == "2"
    at = open_at(PRESENT, demo_store, monkeypatch, slide="99")
    assert titles(at) == ["The class board"] and at.button(key="slide_next").disabled


def test_a_slide_with_missing_runs_says_which_in_one_line(demo_runs_copy, monkeypatch):
    import shutil

    for run_id in ("detection-pretrained", "detection-scratch"):
        shutil.rmtree(demo_runs_copy / run_id)
    at = open_at(PRESENT, demo_runs_copy.parent, monkeypatch, slide="3")
    assert titles(at) == ["Q1. Does pretraining help detection?"]
    assert [i.value for i in at.info] == ["Not in this experiment: detection-pretrained, detection-scratch — train "
                                          "them to see this slide whole."]
    assert len(at.get("plotly_chart")) == 0


def upload_and_name(at: AppTest, data: bytes, breed, name: str = "pet.png", opt_in: bool = False) -> AppTest:
    at.file_uploader[0].set_value((name, data, "image/png")).run()
    question = next(s for s in at.selectbox if s.label == "What breed is it?")
    question.set_value(breed).run()
    if opt_in:
        next(c for c in at.checkbox if c.label == "Show my photo on the board").check().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_live_puts_each_photo_on_the_board_once_with_its_breed_and_no_photo_without_the_opt_in(demo_store, monkeypatch):
    at = open_at(LIVE, demo_store, monkeypatch)
    at.button(key=f"live_example_{at.get('button')[0].label}").click().run()  # an example is not the class's pet
    assert the_board(demo_store).board.tally().pets == 0
    assert not [s for s in at.selectbox if s.label == "What breed is it?"]
    upload_and_name(at, photo_bytes(1), breed_choices()[0])
    tally = the_board(demo_store).board.tally()
    assert (tally.pets, tally.labelled, tally.thumbnails) == (1, 1, ())
    assert set(tally.scores) == {"detection-pretrained", "detection-scratch", "multitask-pretrained",
                                 "multitask-scratch"}
    upload_and_name(at, photo_bytes(1), breed_choices()[1], name="same.png")  # the same photo, another breed
    assert the_board(demo_store).board.tally().pets == 1
    upload_and_name(at, photo_bytes(2), "not sure", opt_in=True)
    tally = the_board(demo_store).board.tally()
    assert (tally.pets, tally.labelled, len(tally.thumbnails)) == (2, 1, 1)
    assert "On the class board: 2 pets so far. Your pet is on it (breed: not sure)." in texts(at)


def test_the_board_says_models_of_drawn_pets_never_saw_a_photo_and_says_nothing_of_photo_models(
        two_experiments, monkeypatch):
    for experiment, drawn in (("demo", True), ("photos", False)):
        board_ui.shared(str(two_experiments / experiment)).board.record(
            "someone", "p1", {"detection-scratch": (1, 2, 3, 4, 5)}, breed=1)
        at = open_at(PRESENT, two_experiments, monkeypatch, slide="99", experiment=experiment)
        assert titles(at) == ["The class board"] and "1 pet on the board" in texts(at), experiment
        assert [w.value for w in at.warning] == ([DRAWN_PETS_NOTE] if drawn else []), experiment
        assert len(at.table) == 2  # the accuracy on the named breed, each model's favourite


def test_a_visitor_gets_no_controls_and_a_click_from_one_is_refused(demo_store, monkeypatch):
    shared = the_board(demo_store)
    shared.board.record("someone", "p1", {"detection-pretrained": (1, 2, 3, 4, 5)}, breed=1)
    at = open_at(PRESENT, demo_store, monkeypatch, slide="99")  # AppTest has no peer: a visitor
    assert not [b for b in at.button if b.key in ("board_reset", "board_reveal")] and not at.radio
    assert "1 pet on the board" in texts(at)

    monkeypatch.setattr(board_ui, "is_presenter", lambda: True)
    at.run()
    at.radio(key="board_mode").set_value("reveal").run()
    assert shared.board.tally().mode == "reveal" and not shared.board.tally().shown
    assert "hidden until the presenter reveals them" in texts(at)
    # The page was drawn for the presenter; the click comes from someone who is not (asked again then).
    for control in ("board_reveal", "board_reset"):
        monkeypatch.setattr(board_ui, "is_presenter", lambda: True)
        at.run()
        monkeypatch.setattr(board_ui, "is_presenter", lambda: False)
        at.button(key=control).click().run()
        assert board_ui.REFUSED in [e.value for e in at.error], control
    assert not shared.board.tally().revealed and shared.board.tally().pets == 1

    monkeypatch.setattr(board_ui, "is_presenter", lambda: True)
    at.run()
    at.button(key="board_reveal").click().run()
    assert shared.board.tally().shown
    at.button(key="board_reset").click().run()
    assert shared.board.tally().pets == 0 and "0 pets on the board" in texts(at)


def test_the_camera_toggle_is_offered_only_where_the_camera_can_work(demo_store, monkeypatch):
    from ui import presenter

    monkeypatch.setattr(presenter, "client_address", lambda: "192.0.2.30")  # a phone, URL unknown: plain http
    at = open_at(LIVE, demo_store, monkeypatch)
    assert not [t for t in at.toggle if t.key == "live_camera_on"]
    assert at.file_uploader[0].label.startswith("Take a photo or choose one")
    monkeypatch.setattr(presenter, "client_address", lambda: "127.0.0.1")
    at.run()
    assert [t for t in at.toggle if t.key == "live_camera_on"]


def test_the_overview_offers_the_board_in_the_export_once_there_are_pets(demo_store, monkeypatch, downloads):
    at = open_at(PAGES[0], demo_store, monkeypatch)
    assert not at.checkbox  # an empty board: nothing to include
    the_board(demo_store).board.record("s1", "p1", {"detection-pretrained": (4, 1, 2, 3, 5)}, breed=4)
    at.run()
    at.checkbox(key="export_board").check().run()
    assert at.checkbox(key="export_board").label == "Include the class board (1 pet, no photos)"
    page = downloads["lab.html"]().decode("utf-8")
    assert '<section id="board"><h2>The class board</h2>' in page and "1 pet uploaded by the class" in page


def test_the_join_slide_shows_the_code_or_with_loopback_only_serving_how_to_serve_the_class(demo_store, monkeypatch):
    from streamlit import config

    from labcore.show.join import SERVE_COMMAND
    from ui import join

    monkeypatch.setattr(join, "network_address", lambda: "192.0.2.7")
    at = open_at(PRESENT, demo_store, monkeypatch, slide="8")
    assert titles(at) == ["Your turn: your pet against the six models"]
    assert [image.captions for image in at.image] == [["Scan me"]]
    port = config.get_option("server.port")
    assert f"http://192.0.2.7:{port}/live?experiment=demo" in texts(at)
    previous = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    try:
        at.run()
    finally:
        config.set_option("server.address", previous)
    assert not at.image
    assert len(at.warning) == 1 and SERVE_COMMAND in at.warning[0].value and "\n" not in at.warning[0].value
