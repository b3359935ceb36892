"""Screenshot the app while it trains the demo, started from its own Overview page.

    python scripts/training_screenshots.py --runs-dir /tmp/fresh-runs [--port 8598]

Serves the app on an empty runs root, clicks "Train the demo here" in headless Chromium, shoots
the Overview as train.py starts (training-starting.png), then, once the first run has finished
and others are training, the Overview and Training histories (training-overview.png,
training-histories.png) into docs/screenshots/. It leaves the training running (it is
train.py in its own session): the runs root holds the whole demo a few minutes later. On a
root that is being trained already, it starts nothing and takes the last two. It prints how
long the first page took from the server's start and, with --until-full, waits for the
Overview to show all six runs and prints how long that took from the click.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labcore.store import inflight  # noqa: E402
from screenshots import CHROMIUM_ARGS, ROOT, full_page_screenshot, serve_app  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True, help="an empty (or absent) runs root")
    parser.add_argument("--port", type=int, default=8598)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--until-full", action="store_true",
                        help="then wait on the Overview until it shows all six runs, and print the time")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        print("training_screenshots.py: Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    underway = inflight.holder(args.runs_dir) is not None  # shoot that one, start none
    if not underway and args.runs_dir.is_dir() and any(args.runs_dir.iterdir()):
        print(f"training_screenshots.py: {args.runs_dir} is neither empty nor being trained", file=sys.stderr)
        return 1
    env = {**os.environ, "PETLAB_RUNS_DIR": str(args.runs_dir)}
    started = time.perf_counter()
    with serve_app(args.port, env) as url:
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(900_000)
            page.goto(url)
            button = page.get_by_role("button", name="Train the demo here")
            (page.get_by_text("Training experiment").first if underway else button).wait_for()
            print(f"first page drawn {time.perf_counter() - started:.1f} s after `streamlit run` started")
            clicked = time.perf_counter()
            if not underway:
                button.click()
                page.get_by_text("Training experiment").first.wait_for()
                full_page_screenshot(page, args.out / "training-starting.png")
            page.get_by_text("of 6 runs in").first.wait_for()  # the Overview's table: a run has finished
            page.wait_for_timeout(4000)
            full_page_screenshot(page, args.out / "training-overview.png")
            page.goto(f"{url}/histories")
            page.get_by_text("in progress").first.wait_for()
            page.locator("[data-testid='stPlotlyChart']").first.wait_for()
            page.wait_for_timeout(4000)
            full_page_screenshot(page, args.out / "training-histories.png")
            if args.until_full:
                page.goto(url)  # the Overview fills by itself as runs finish: no reload after this
                page.get_by_text("6 of 6 runs in").first.wait_for()
                print(f"the Overview showed all six runs {time.perf_counter() - clicked:.0f} s after the click")
            browser.close()
    print(f"screenshots in {args.out}; the training goes on ({args.runs_dir / 'train.log'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
