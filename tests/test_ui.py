"""The ui package's helpers that do not need a running page."""
import gc
import weakref

from ui import caches, display


class Node:
    """An object in a reference cycle, as Keras models are: only the cycle collector frees it."""

    def __init__(self):
        self.me = self


def test_escape_keeps_a_file_name_as_text():
    assert display.escape("![x](a.png)\n_b_") == r"\!\[x\]\(a\.png\) \_b\_"


def test_freezing_the_long_lived_objects_frees_what_was_let_go_first():
    kept = Node()
    try:
        caches.freeze_long_lived()
        assert gc.get_freeze_count() > 0  # the collector no longer walks them
        watch = weakref.ref(kept)
        del kept  # as the model cache lets a model go: in a cycle, frozen
        gc.collect()
        assert watch() is not None  # a full collection does not see frozen objects...
        caches.freeze_long_lived()
        assert watch() is None  # ...the next model load unfreezes and collects it
    finally:
        gc.unfreeze()


def test_a_model_load_collects_nothing_on_the_request_and_freezes_once_after_the_burst(monkeypatch):
    """Loading a model (on a visitor's request) runs no full collection there: one freeze, in a
    thread of its own, after the last of a burst of loads."""
    import threading
    import time

    from labcore.show import inference

    frozen, collected = [], []
    monkeypatch.setattr(caches, "FREEZE_AFTER_SECONDS", 0.3)
    monkeypatch.setattr(caches, "freeze_long_lived", lambda: frozen.append(threading.current_thread().name))
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: (collected.append(threading.current_thread().name),
                                                      real_collect(*args))[1])
    monkeypatch.setattr(inference.Predictor, "from_run", classmethod(lambda cls, run: object()))
    stamp = time.time_ns()
    for n in range(3):  # an experiment's models, one after another
        caches._predictor(f"/loaded/{stamp}/{n}", n, None)
    assert frozen == [] and threading.current_thread().name not in collected
    deadline = time.monotonic() + 10
    while not frozen and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert frozen == ["freeze-long-lived"]


class Notices:
    """Stands in for streamlit in ui.queueing: records what the waiting line says."""

    def __init__(self):
        self.lines: list[str] = []
        self.emptied = 0  # st.empty() to make the line, then .empty() on it to clear it

    def empty(self):
        self.emptied += 1
        return self

    def caption(self, text):
        self.lines.append(text)


def test_a_page_waiting_in_a_queue_says_how_many_are_ahead_then_clears_the_line(monkeypatch):
    import threading
    from concurrent.futures import Future

    from ui import queueing

    notices = Notices()
    monkeypatch.setattr(queueing, "st", notices)
    monkeypatch.setattr(queueing, "POLL_SECONDS", 0.05)
    future = Future()
    places = iter([3, 3, 1, None, None, None, None, None, None, None])
    threading.Timer(0.4, future.set_result, args=("answer",)).start()
    assert queueing.answer(future, lambda: next(places, None)) == "answer"
    assert notices.lines[:3] == ["queued: 3 ahead", "queued: 3 ahead", "queued: 1 ahead"]
    assert notices.emptied == 2  # made once, cleared once at the end

    notices.lines.clear()
    done = Future()
    done.set_result(7)
    assert queueing.answer(done, lambda: 5) == 7 and notices.lines == []  # no wait, no line


def test_a_wait_inside_a_shared_cache_is_announced_with_the_queue_it_began_behind(monkeypatch):
    from ui import queueing

    notices = Notices()
    monkeypatch.setattr(queueing, "st", notices)
    with queueing.saying_queued(4):
        assert notices.lines == ["queued: 4 ahead"] and notices.emptied == 1
    assert notices.emptied == 2  # cleared when the wait is over
    with queueing.saying_queued(0):
        pass
    assert notices.lines == ["queued: 4 ahead"] and notices.emptied == 2  # nothing ahead: no line


def test_one_look_at_the_store_serves_every_session_for_a_moment(tmp_path, monkeypatch):
    from labcore.store import inflight
    from ui import experiments

    reads = []
    real = inflight.trainings
    monkeypatch.setattr(inflight, "trainings", lambda root: (reads.append(root), real(root))[1])
    monkeypatch.setattr(experiments, "runs_root", lambda: tmp_path)
    experiments.forget_store_look()
    looks = [experiments.store_look() for _ in range(5)]  # five sessions' pages or polls
    assert len(reads) == 1 and all(look is looks[0] for look in looks)
    experiments.forget_store_look()
    experiments.store_look()
    assert len(reads) == 2


def test_the_apps_options_are_parsed_once_per_command_line(monkeypatch):
    """runs_root and the join code read them on every page run: parsed once, not per run (a
    parser per call was a tenth of the server's CPU with 60 sessions), yet a changed command
    line is read anew."""
    import argparse
    import sys

    from ui import options
    from ui.experiments import runs_root
    from ui.join import public_url

    made = []
    real = argparse.ArgumentParser.__init__
    monkeypatch.setattr(argparse.ArgumentParser, "__init__", lambda self, *a, **k: (made.append(1), real(self, *a, **k))[1])
    monkeypatch.setattr(sys, "argv", ["app.py", "--runs-dir", "/tmp/lab-a", "--public-url", "https://pets.example.org"])
    options._parsed.cache_clear()
    for _ in range(3):
        assert str(runs_root()) == "/tmp/lab-a" and public_url() == "https://pets.example.org"
    assert len(made) == 1
    monkeypatch.setattr(sys, "argv", ["app.py", "--runs-dir", "/tmp/lab-b"])
    monkeypatch.delenv("PETLAB_PUBLIC_URL", raising=False)
    assert str(runs_root()) == "/tmp/lab-b" and public_url() is None and len(made) == 2
