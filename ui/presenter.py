"""The presenter: the browser on the serving machine, reached directly, the only one that may
start a training and reset or reveal the class board (labcore.store.access says who that is;
this module asks Streamlit)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

import streamlit as st

from labcore.settings import PROFILE_HELP
from labcore.store import inflight
from labcore.store.access import is_presenter_request
from ui.display import escape

# The server option that takes the train button away from every browser, the presenter's too.
NO_BUTTON_FLAG = "--no-train-button"  # streamlit run app.py -- --no-train-button
NO_BUTTON_ENV = "PETLAB_NO_TRAIN_BUTTON"  # =1


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

def camera_works_here() -> bool:
    """Whether this browser lets the page use its camera (a secure context: https, or a page
    opened at a loopback address), from the address in its location bar, else its peer."""
    from labcore.show.join import secure_context

    return secure_context(st.context.url, client_address())

def request_headers() -> Mapping[str, str]:
    """The headers of the request that opened this session (empty where unknown, e.g. in AppTest)."""
    return st.context.headers

def is_presenter() -> bool:
    """Whether this session's browser is the presenter: a loopback peer, no forwarding header, a
    loopback Host (labcore.store.access.is_presenter_request). Only it may start a training, reset
    the class board or choose when the board is revealed (SPEC). Asked at every draw and click."""
    return is_presenter_request(client_address(), request_headers())

def button_turned_off(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the server was started with the train button off: `--no-train-button` after
    `--` (`streamlit run app.py -- --no-train-button`), or $PETLAB_NO_TRAIN_BUTTON set to
    anything but '', 0, false or no."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    return NO_BUTTON_FLAG in argv or environ.get(NO_BUTTON_ENV, "").strip().lower() not in ("", "0", "false", "no")

def may_train_here() -> bool:
    """Only the presenter may start a training (SPEC), and only where the server allows it."""
    return not button_turned_off() and is_presenter()

def train_here_button(root: Path, started: Callable[[], None] = lambda: None) -> None:
    """The button that trains the demo here; `started` is called once train.py is started."""
    if button_turned_off():
        st.caption("Training from this page is turned off on this server; on the machine that serves "
                   "the app, run:")
        return
    if not is_presenter():
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
