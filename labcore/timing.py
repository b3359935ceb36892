"""Clock helpers shared by the estimate, the bench and the progress lines: how long a call
takes (its first, tracing call apart from the rest) and durations as people read them."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], steps: int) -> tuple[float, float]:
    """(seconds of the first call, median seconds of the `steps` calls after it). The first
    call of a traced function traces it, so it is kept apart from the steady steps."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def duration(seconds: float) -> str:
    """12s, 4 min 05s, 9 h 12 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
