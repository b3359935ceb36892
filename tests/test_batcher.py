"""labcore.show.batcher: requests that arrive together run as one batch; each caller gets its own
answer; a batch never exceeds its limit; a call that raises fails only its own requests."""
from __future__ import annotations

import threading
import time

import pytest

from labcore.show.batcher import Batcher


class Gated:
    """A batch function that records each batch and, until `release` is set, holds the first
    one, so the test can queue more behind it."""

    def __init__(self, answer=lambda item: item * 10) -> None:
        self.batches: list[list] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.answer = answer

    def __call__(self, items):
        self.batches.append(list(items))
        self.started.set()
        assert self.release.wait(30), "the test never released the batch"
        return [self.answer(item) for item in items]


def test_two_requests_that_arrive_together_run_as_one_batch_and_each_caller_gets_its_own():
    run = Gated()
    run.release.set()
    batcher = Batcher(run, max_batch=2, wait_s=30)  # full at two: it runs at once, long before the wait
    answers = {}

    def caller(item):
        answers[item] = batcher(item)

    threads = [threading.Thread(target=caller, args=(item,)) for item in (3, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(sorted, run.batches)) == [[3, 7]]  # one call for both
    assert answers == {3: 30, 7: 70}


def test_a_batch_never_exceeds_its_limit_and_the_queue_waits_behind_the_running_one():
    run = Gated()
    batcher = Batcher(run, max_batch=3, wait_s=0)
    first = batcher.submit(0)
    assert run.started.wait(30)  # the first batch (one request) is running and held
    futures = [batcher.submit(item) for item in range(1, 11)]
    assert batcher.pending() == 11
    assert batcher.ahead(futures[0]) == 1 and batcher.ahead(futures[-1]) == 10  # the running one counts
    assert batcher.ahead(first) is None  # being run
    run.release.set()
    assert [f.result(30) for f in futures] == [item * 10 for item in range(1, 11)] and first.result() == 0
    assert [len(b) for b in run.batches] == [1, 3, 3, 3, 1]
    assert max(batcher.sizes) == 3 and sum(batcher.sizes.values()) == 5
    assert [b for batch in run.batches for b in batch] == list(range(11))  # first come, first served


def test_a_call_that_raises_fails_only_its_own_request_and_the_queue_goes_on():
    def answer(item):
        if item == "bad":
            raise ValueError("this one cannot be read")
        return item.upper()

    run = Gated(answer)
    batcher = Batcher(run, max_batch=8, wait_s=0)
    blocker = batcher.submit("first")
    assert run.started.wait(30)
    futures = {item: batcher.submit(item) for item in ("cat", "bad", "dog")}  # one batch, behind the first
    run.release.set()
    assert blocker.result(30) == "FIRST"
    assert futures["cat"].result(30) == "CAT" and futures["dog"].result(30) == "DOG"
    with pytest.raises(ValueError, match="cannot be read"):
        futures["bad"].result(30)
    assert sorted(run.batches[1]) == ["bad", "cat", "dog"]  # tried together first, then one by one
    assert batcher("later") == "LATER"  # the batch thread lived on


def test_the_batch_thread_waits_for_companions_then_ends_when_the_queue_is_empty():
    run = Gated()
    run.release.set()
    batcher = Batcher(run, max_batch=8, wait_s=0.5, name="waits")
    futures = [batcher.submit(item) for item in range(3)]  # within the first one's half second
    assert [f.result(30) for f in futures] == [0, 10, 20]
    assert run.batches == [[0, 1, 2]]
    deadline = time.monotonic() + 10
    while any(t.name == "batches-waits" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "batches-waits" for t in threading.enumerate())  # no idle thread keeps the model
    assert batcher(5) == 50  # and a new request starts one again


def test_a_cancelled_request_is_never_run():
    run = Gated()
    batcher = Batcher(run, max_batch=4, wait_s=0)
    batcher.submit(1)
    assert run.started.wait(30)
    dropped = batcher.submit(2)
    kept = batcher.submit(3)
    assert dropped.cancel()
    run.release.set()
    assert kept.result(30) == 30
    assert [b for batch in run.batches for b in batch] == [1, 3]


def test_limits_are_checked():
    with pytest.raises(ValueError):
        Batcher(lambda items: items, max_batch=0, wait_s=0)
