"""How the pages show text and charts: store and user text escaped for markdown, one Plotly config."""
from __future__ import annotations

import re


_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark

def escape(text: str) -> str:
    """User-given text (a file name, a typed path) for st.markdown and its kin, shown as the
    characters it is: every ASCII punctuation mark backslash-escaped (CommonMark allows it for
    all of them), so no link, image, emphasis, `:emoji:`, `:red[colour]` or `$maths$` forms;
    line breaks become spaces, so no new block starts."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
