"""The presenter: the browser on the serving machine, the only one that may start a training and
reset or reveal the class board."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import streamlit as st

from labcore.settings import PROFILE_HELP
from labcore.store import inflight
from ui.display import escape


def client_address() -> str | None:
    """The browser's address as the server's socket sees it (None where unknown, e.g. in
    AppTest). Not `st.context.ip_address`: that gives None for a loopback browser too, so it
    cannot tell this machine from an unknown one. Streamlit 1.67 keeps the peer's address on
    the session's client, where its own local-only features read it."""
    from streamlit.runtime import exists, get_instance
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not exists():
        return None
    client = get_instance().get_client(ctx.session_id)
    address = getattr(getattr(client, "client_context", None), "remote_ip", None)
    return address if isinstance(address, str) else None  # AppTest's mocked runtime gives a stand-in

def is_presenter() -> bool:
    """Whether this browser is the presenter's: on the serving machine (a loopback peer). Only it
    may start a training, reset the class board or choose when the board is revealed (SPEC)."""
    return inflight.is_loopback(client_address())

def camera_works_here() -> bool:
    """Whether this browser lets the page use its camera (a secure context: https, or a page
    opened at a loopback address), from the address in its location bar, else its peer."""
    from labcore.show.join import secure_context

    return secure_context(st.context.url, client_address())

def may_train_here() -> bool:
    """Only a browser on the serving machine may start training (SPEC); others get the command."""
    return is_presenter()

def train_here_button(root: Path, started: Callable[[], None] = lambda: None) -> None:
    """The button that trains the demo here; `started` is called once train.py is started."""
    if not may_train_here():
        st.caption("Training from this page is for a browser on the machine that serves the app; "
                   "on that machine, run:")
        return
    st.button("Train the demo here", type="primary", icon=":material/play_arrow:", on_click=_start_demo,
              args=(str(root), started), help="Runs train.py in the background on this machine: closing the page "
                                      "does not stop it, and one training at a time trains a runs folder.")
    st.caption(f"Quick estimate: {PROFILE_HELP['demo']} (this machine: {os.cpu_count()} cores). Once "
               f"started, train.py measures its own estimate, shown at the top; its output goes to "
               f"{escape(root / inflight.LOG_FILE)}. Or in a terminal:")

def _start_demo(root: str, started: Callable[[], None]) -> None:
    if may_train_here():  # asked again at the click, not only when the button was drawn
        inflight.start_demo(root)
        started()
