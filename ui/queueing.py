"""Waiting for work the sessions share, and saying so: when the server is saturated a visitor
sees "queued: n ahead" where the answer will be, not a silent spinner."""
from __future__ import annotations

from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import streamlit as st

T = TypeVar("T")
POLL_SECONDS = 0.25  # how often a waiting page looks at its place in the queue


def queued_text(ahead: int) -> str:
    return f"queued: {ahead} ahead"


def answer(future: "Future[T]", ahead: Callable[[], int | None]) -> T:
    """The future's result (or the exception it holds), waited for on this page; while it waits
    behind others, one line there says how many are ahead, updated as the queue moves."""
    notice = None
    try:
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                waiting = ahead()
                if waiting:
                    notice = notice or st.empty()
                    notice.caption(queued_text(waiting))
    finally:
        if notice is not None:
            notice.empty()


@contextmanager
def saying_queued(ahead: int) -> Iterator[None]:
    """For a wait this page cannot watch (it happens inside a shared cache): the line, with how
    many were ahead when it began, for as long as the block runs."""
    notice = st.empty() if ahead else None
    if notice is not None:
        notice.caption(queued_text(ahead))
    try:
        yield
    finally:
        if notice is not None:
            notice.empty()
