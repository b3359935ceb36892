"""Store text made safe for where it is shown. A store may come from anyone (a copied folder):
its strings (run labels, paths, history keys) must show as the characters they are, never as a
link, a tag or the end of a code span."""
from __future__ import annotations

import html
import re


def plotly_text(text: str) -> str:
    """`text` for a Plotly title, trace name or hover text: Plotly reads a few HTML tags there
    (<a href>, <b>, <br>...); with <, > and & written as entities, which Plotly turns back into
    the characters, none forms."""
    return html.escape(str(text), quote=False)


def code_span(text: str) -> str:
    """`text` as one markdown code span, whatever backticks it holds: fenced with one backtick
    more than its longest run of them (CommonMark), on one line."""
    text = " ".join(str(text).splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
