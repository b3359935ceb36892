"""The app's own command-line options, given after `--` (`streamlit run app.py -- --runs-dir DIR`).

Read on every page run by several modules, so they are parsed once per command line: building an
argparse parser looks up its messages' translations on disk, and with a class on the pages that
was a tenth of the server's CPU (py-spy, 60 sessions uploading at once)."""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Sequence


def app_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """--runs-dir and --public-url (None where not given) from `argv` (this process's by default);
    anything else on the line is left to whoever reads it."""
    return _parsed(tuple(sys.argv[1:] if argv is None else argv))


@functools.lru_cache(maxsize=4)
def _parsed(argv: tuple[str, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-dir")
    parser.add_argument("--public-url")
    return parser.parse_known_args(list(argv))[0]
