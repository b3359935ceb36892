"""Clock helpers shared by the estimate, the bench and the progress lines: how long a call
takes (its first, tracing call apart from the rest) and durations as people read them."""
from __future__ import annotations

import re
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


def parse_duration(text: str) -> float:
    """The seconds `duration` wrote as `text` (to the second, or to the minute above an hour)."""
    match = re.fullmatch(r"\s*(?:(\d+) h (\d+) min|(?:(\d+) min )?(\d+)s)\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    hours, minutes_h, minutes, seconds = match.groups()
    if hours is not None:
        return 3600.0 * int(hours) + 60.0 * int(minutes_h)
    return 60.0 * int(minutes or 0) + int(seconds)


def cores_busy(fn: Callable[[], Any], calls: int) -> float:
    """How many cores `fn` keeps busy: this process's CPU seconds (every thread) over the wall
    seconds of `calls` calls of an already traced `fn`; at least 1."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return max(1.0, cpu / wall) if wall > 0 else 1.0
