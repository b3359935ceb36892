"""One queue per loaded model: the requests that arrive together run as one batch.

When a class uploads at once, every session wants the same six models at the same moment.
Run one by one, N uploads cost N x 6 graph calls of batch 1, each from its own session thread;
a batch of N images costs a model less per image than N batches of one
(`python -m labcore.bench --batching`, section 9).

The design is TF Serving's basic batch scheduler (`max_batch_size`, `batch_timeout_micros`):
a queue per model and one thread that takes up to `max_batch` requests from it, as soon as that
many wait or the oldest has waited `wait_s`, runs them as one call and hands each caller its
own answer. Not Ray Serve's `@serve.batch`, which batches the coroutines of one asyncio event
loop: Streamlit runs each session's script in a thread of its own, and a thread-safe queue that
callers block on fits those threads as they are. It also gives the guarantee the app needs:
only the batch thread calls the model, so its forward pass never runs from many threads at once.

The batch thread lives only while requests wait: it starts with the first request and ends when
the queue is empty, so an idle model holds no thread, and a model the app's cache lets go is
not kept alive by one.

A call that raises fails only its own requests: a batch that raises is run again one request at
a time, so one bad picture cannot cost the others their answers.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

# Image size (px) -> (largest batch, the wait for companions in seconds), read off
# `python -m labcore.bench --batching` (section 9; docs/benchmarks.md, 2 cores). The batch: the
# smallest whose CPU per image, summed over the three architectures, is within 10 % of the best
# (64 px: 32, 6x less CPU per image than one at a time; 224 px: 4, 1.3x: larger ones there save
# little more, hold every member's answer longer and take 200-380 MB more at 32), except at
# 128 px: 8, not the 16 that rule picks (13 % above the best there, 2-2.3x less than one at a
# time), because a lecture hall measured no CPU difference end to end (0.22-0.27 CPU-s per upload
# either way, three classes of 100 on one server) and 100-145 MB less memory kept after them.
# The wait: about a fifth of EfficientNetB3's batch-of-one forward pass, so a lone upload pays
# at most about 20 % more; under load the batches form while the one before runs.
LIMITS: dict[int, tuple[int, float]] = {64: (32, 0.010), 128: (8, 0.020), 224: (4, 0.020)}

In = TypeVar("In")
Out = TypeVar("Out")


def limits_for(image_size: int) -> tuple[int, float]:
    """(largest batch, wait in seconds) for a model of this input size: those of the smallest
    measured size at or above it (a larger picture costs more memory per batch), else the largest."""
    size = min((s for s in LIMITS if s >= image_size), default=max(LIMITS))
    return LIMITS[size]


@dataclass
class _Request(Generic[In]):
    item: In
    arrived: float  # time.monotonic()
    future: Future = field(default_factory=Future)


class Batcher(Generic[In, Out]):
    """Runs `run(items) -> answers` (one answer per item, in order) on batches of at most
    `max_batch` submitted items, each batch closed when full or once its oldest item has waited
    `wait_s`."""

    def __init__(self, run: Callable[[Sequence[In]], Sequence[Out]], max_batch: int, wait_s: float,
                 name: str = "batcher") -> None:
        if max_batch < 1 or wait_s < 0:
            raise ValueError(f"a batch holds at least 1 item and waits 0 s or more, not {max_batch}, {wait_s}")
        self._run, self.max_batch, self.wait_s, self.name = run, max_batch, wait_s, name
        self._queue: list[_Request] = []
        self._running: list[_Request] = []
        self._worker: threading.Thread | None = None
        self._changed = threading.Condition()
        self.sizes: Counter[int] = Counter()  # batch size -> how many such batches ran

    def submit(self, item: In) -> "Future[Out]":
        """Queue `item`; the future gets its answer, or the exception its batch raised."""
        request = _Request(item, time.monotonic())
        with self._changed:
            self._queue.append(request)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=f"batches-{self.name}", daemon=True)
                self._worker.start()
            self._changed.notify()
        return request.future

    def __call__(self, item: In) -> Out:
        """Submit `item` and wait for its answer."""
        return self.submit(item).result()

    def ahead(self, future: Future) -> int | None:
        """How many requests will be answered before this one's batch starts (the batch being
        run counts whole), or None once it is being run or answered."""
        with self._changed:
            for position, request in enumerate(self._queue):
                if request.future is future:
                    return len(self._running) + position
        return None

    def pending(self) -> int:
        """Requests queued or being run."""
        with self._changed:
            return len(self._queue) + len(self._running)

    def _work(self) -> None:
        while True:
            with self._changed:
                if not self._queue:
                    self._worker = None
                    return
                deadline = self._queue[0].arrived + self.wait_s
                while len(self._queue) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                taken, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                # A caller that cancelled its future is dropped here, before it costs anything.
                self._running = [r for r in taken if r.future.set_running_or_notify_cancel()]
            try:
                if self._running:
                    self._answer(self._running)
            finally:
                with self._changed:
                    self._running = []

    def _answer(self, batch: list[_Request]) -> None:
        try:
            answers = list(self._run([r.item for r in batch]))
            if len(answers) != len(batch):
                raise RuntimeError(f"{self.name}: {len(answers)} answers for {len(batch)} requests")
        except BaseException as err:  # noqa: BLE001 - handed to the callers: the thread must not die with it
            if len(batch) == 1:
                batch[0].future.set_exception(err)
                return
            for request in batch:  # alone, so only the request that fails gets the error
                self._answer([request])
            return
        self.sizes[len(batch)] += 1
        for request, answer in zip(batch, answers):
            request.future.set_result(answer)
