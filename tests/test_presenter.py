"""The train button (ui.presenter): drawn and obeyed for the presenter only, asked again at the
click, and off for everyone where the server says so; and two clicks at once start one training."""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from labcore.store import inflight
from labcore.store.runs import RUNS_DIR_ENV
from ui import presenter

BUTTON = "Train the demo here"
LOCAL = ("127.0.0.1", {"Host": "localhost:8501"})


def open_app(root: Path, monkeypatch, peer: str | None, headers: dict) -> AppTest:
    """The app on `root` as a browser at `peer` sending `headers` sees it."""
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    monkeypatch.setattr(presenter, "client_address", lambda: peer)
    monkeypatch.setattr(presenter, "request_headers", lambda: headers)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("peer, headers", [
    ("192.168.1.20", {"Host": "192.168.1.10:8501"}),  # a visitor
    ("127.0.0.1", {"Host": "localhost:8501", "X-Forwarded-For": "203.0.113.7"}),  # behind nginx on the laptop
    ("127.0.0.1", {"Host": "abcd.ngrok-free.app"}),  # through a tunnel
    ("127.0.0.1", {"Host": "rebound.example:8501"}),  # a page that rebound its name to 127.0.0.1
])
def test_the_button_is_for_the_presenter_only(tmp_path, monkeypatch, peer, headers):
    at = open_app(tmp_path / "runs", monkeypatch, *LOCAL)
    assert [b.label for b in at.button] == [BUTTON]
    assert any("python train.py --profile demo" in c.value for c in at.code)  # the terminal's way too
    at = open_app(tmp_path / "runs", monkeypatch, peer, headers)
    assert not at.button
    assert any("python train.py --profile demo" in c.value for c in at.code)
    assert any("is for a browser on the machine that serves the app" in c.value for c in at.caption)


@pytest.mark.parametrize("argv, environ, off", [
    ([], {}, False), (["--runs-dir", "x"], {"PETLAB_NO_TRAIN_BUTTON": ""}, False),
    (["--runs-dir", "x", "--no-train-button"], {}, True), ([], {"PETLAB_NO_TRAIN_BUTTON": "1"}, True),
    ([], {"PETLAB_NO_TRAIN_BUTTON": "yes"}, True), ([], {"PETLAB_NO_TRAIN_BUTTON": "0"}, False),
    ([], {"PETLAB_NO_TRAIN_BUTTON": "False"}, False)])
def test_the_server_option_turns_the_button_off(argv, environ, off):
    assert presenter.button_turned_off(argv, environ) is off


@pytest.mark.parametrize("how", ["argv", "env"])
def test_with_the_button_off_even_the_presenter_gets_the_command(tmp_path, monkeypatch, how):
    if how == "argv":
        monkeypatch.setattr(sys, "argv", ["app.py", "--no-train-button"])
    else:
        monkeypatch.setenv(presenter.NO_BUTTON_ENV, "1")
    at = open_app(tmp_path / "runs", monkeypatch, *LOCAL)
    assert not at.button
    assert any("turned off on this server" in c.value for c in at.caption)
    assert any("python train.py --profile demo" in c.value for c in at.code)


def test_the_click_is_asked_again_and_only_the_presenter_s_starts_a_training(tmp_path, monkeypatch):
    """The button was drawn for the presenter; by the click, the request no longer is one (the
    same session reached through a forwarder, say): nothing starts. The presenter's click does."""
    started = []
    monkeypatch.setattr(inflight, "start_demo", lambda root, wait=20.0: started.append(root) or True)
    at = open_app(tmp_path / "runs", monkeypatch, *LOCAL)
    monkeypatch.setattr(presenter, "request_headers", lambda: {**LOCAL[1], "X-Forwarded-For": "203.0.113.7"})
    at.button[0].click().run()
    assert not at.exception and started == [] and not at.button
    at = open_app(tmp_path / "runs", monkeypatch, *LOCAL)
    at.button[0].click().run()
    assert not at.exception and started == [str(tmp_path / "runs")]


# Stands in for train.py: takes the lock half a second after it starts, as train.py does once
# Python is up, and holds it a few seconds (ended sooner by the test; any left over end by themselves).
FAKE_TRAINER = ("import sys, time; time.sleep(0.5); from labcore.store.inflight import claim; "
                "claim(sys.argv[1]); time.sleep(5)")


def test_two_clicks_at_once_start_one_training(tmp_path, monkeypatch):
    """Two tabs of this server click in the same instant, before train.py holds the lock: one
    starts it, the other is told a training is under way."""
    root = tmp_path / "runs"
    monkeypatch.setattr(inflight, "demo_command", lambda root: [sys.executable, "-c", FAKE_TRAINER, str(root)])
    together = threading.Barrier(2)
    results = []

    def click() -> None:
        together.wait()
        results.append(inflight.start_demo(root, wait=20))

    tabs = [threading.Thread(target=click) for _ in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(60)
    holder = inflight.holder(root)
    try:
        assert sorted(results) == [False, True]
        assert (root / inflight.LOG_FILE).read_text().count("started from the app") == 1
    finally:
        if holder:
            os.kill(holder["pid"], signal.SIGKILL)
