"""How the class joins: the Live page's address on this server, as a QR code, large on the
Present page's "Your turn" slide and small in the presenter's sidebar (labcore.show.join)."""
from __future__ import annotations

import os

import streamlit as st
from streamlit import config

from labcore.show.join import PUBLIC_URL_ENV, Join, join_target, network_address, qr_png
from labcore.store.experiments import Experiment
from ui.display import escape
from ui.options import app_options
from ui.presenter import is_presenter


def public_url() -> str | None:
    """The address the class opens where no socket can see it (a tunnel, a cloud host):
    `streamlit run app.py -- --public-url URL`, else $PETLAB_PUBLIC_URL."""
    return app_options().public_url or os.environ.get(PUBLIC_URL_ENV) or None


def join_here(experiment: Experiment | None) -> Join:
    """The Live page's URL for the class on this server (the experiment in it), or why there is none."""
    return join_target(config.get_option("server.address"), int(config.get_option("server.port")),
                       base_path=config.get_option("server.baseUrlPath") or "", public_url=public_url(),
                       experiment=experiment.key if experiment else None, network=network_address())


@st.cache_data(show_spinner=False, max_entries=8)
def qr_code(url: str, scale: int) -> bytes:
    return qr_png(url, scale)


def draw_join(experiment: Experiment | None) -> None:
    """The join slide's code, large, with the address spelled out and the steps; or, where no
    phone can reach this server, the one line that says how to serve the class instead."""
    join = join_here(experiment)
    if join.url is None:
        st.warning(join.problem, icon=":material/wifi_off:")  # our sentence, with the command as code
        return
    code, steps = st.columns([2, 3], vertical_alignment="center")
    code.image(qr_code(join.url, 12), width=380, caption="Scan me")
    steps.markdown("1. Scan the code with your phone's camera, or type:\n"
                   f"   **{escape(join.url)}**\n"
                   "2. **Take a photo** of your pet (or choose one from your photos).\n"
                   "3. See what six models make of it, then answer **What breed is it?**\n"
                   "4. Watch the class board: which models get your pets right?")
    if join.url.startswith("http://"):
        steps.caption("Plain http: phones take the photo through the upload button (their own camera app).")


def join_sidebar(experiment: Experiment | None) -> None:
    """A small code in the presenter's sidebar, on every page (visitors have joined already)."""
    if not is_presenter():
        return
    join = join_here(experiment)
    if join.url is not None:
        st.sidebar.image(qr_code(join.url, 4), width=140, caption="The class joins here (large on Present's "
                                                                  "\"Your turn\" slide)")
